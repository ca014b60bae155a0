//! QMP messages in their wire form: the greeting, `query-version`'s result,
//! success and error replies, and QEMU's compact JSON with CRLF.
use super::error::QmpError;
use crate::json::Json;
use bytes::Bytes;

/// The greeting object.
pub fn greeting() -> Json {
    greeting_with(true)
}

/// The greeting object, offering `oob` or not.
pub fn greeting_with(oob: bool) -> Json {
    let caps = if oob { vec![Json::str("oob")] } else { Vec::new() };
    Json::object([(
        "QMP",
        Json::object([("version", version()), ("capabilities", Json::Array(caps))]),
    )])
}

/// The `query-version` result.
pub fn version() -> Json {
    let (major, minor, micro) = super::QEMU_VERSION;
    Json::object([
        (
            "qemu",
            Json::object([
                ("major", Json::Int(major)),
                ("minor", Json::Int(minor)),
                ("micro", Json::Int(micro)),
            ]),
        ),
        ("package", Json::str(super::package_string())),
    ])
}

/// A message on the wire: QEMU's compact JSON and CRLF.
pub fn wire(v: &Json) -> Bytes {
    let mut s = v.to_qemu_string();
    s.push_str("\r\n");
    Bytes::from(s)
}

/// `{"return": …, "id": …}`.
pub fn success(id: Option<Json>, ret: Json) -> Json {
    let mut m = vec![("return".to_owned(), ret)];
    if let Some(id) = id {
        m.push(("id".to_owned(), id));
    }
    Json::Object(m)
}

/// `{"id": …, "error": {…}}`.
pub fn failure(id: Option<Json>, err: &QmpError) -> Json {
    let mut m = vec![("error".to_owned(), err.to_json())];
    if let Some(id) = id {
        m.push(("id".to_owned(), id));
    }
    Json::Object(m)
}
