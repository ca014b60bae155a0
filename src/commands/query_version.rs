//! `query-version`: the QEMU version whose QMP interface chardevd serves,
//! and its own package string.
use super::{Args, Command, Request};
use crate::api::execute::Executor;
use crate::error::Error;
use crate::json::Json;
use crate::runtime::Handle;

/// The QEMU version whose QMP interface chardevd serves.
pub(crate) const QEMU_VERSION: (i64, i64, i64) = (10, 0, 2);

/// The `package` string of the greeting and `query-version`.
pub(crate) fn package_string() -> String {
    format!("chardevd {}", env!("CARGO_PKG_VERSION"))
}

/// `query-version`: the QEMU version whose QMP chardevd speaks, and its
/// own package string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryVersion;

/// QEMU's `VersionInfo`: the QEMU version and the package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    /// QEMU's major, minor and micro version (10.0.2).
    pub qemu: (i64, i64, i64),
    /// `chardevd <crate version>`.
    pub package: String,
}

impl Request for QueryVersion {
    const NAME: &'static str = "query-version";
    type Output = VersionInfo;

    #[allow(private_interfaces)]
    async fn execute(self, exec: &Executor) -> Result<VersionInfo, Error> {
        exec.check_running()?;
        Ok(VersionInfo {
            qemu: QEMU_VERSION,
            package: package_string(),
        })
    }
}

impl QueryVersion {
    /// The result as QMP renders it (the greeting carries it too).
    pub(crate) fn now() -> Json {
        Self::to_qmp(VersionInfo {
            qemu: QEMU_VERSION,
            package: package_string(),
        })
    }
}

impl Command for QueryVersion {
    fn from_qmp(_args: &Args<'_>) -> Result<Self, Error> {
        Ok(QueryVersion)
    }

    fn to_qmp(v: VersionInfo) -> Json {
        let (major, minor, micro) = v.qemu;
        Json::object([
            (
                "qemu",
                Json::object([
                    ("major", Json::Int(major)),
                    ("minor", Json::Int(minor)),
                    ("micro", Json::Int(micro)),
                ]),
            ),
            ("package", Json::Str(v.package)),
        ])
    }
}

impl Handle {
    /// `query-version`: QEMU 10.0.2 and chardevd's package string.
    pub async fn query_version(&self) -> Result<VersionInfo, Error> {
        self.run(QueryVersion).await
    }
}
