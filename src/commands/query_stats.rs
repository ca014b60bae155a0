//! `__org.chardevd_query-stats`: traffic and drop counters, per chardev and
//! for QMP (see `crate::stats` and RELIABILITY.md).
use super::{Args, Command, Request};
use crate::api::execute::Executor;
use crate::error::Error;
use crate::json::Json;
use crate::runtime::Handle;
use crate::stats::{ChardevStats, QmpStats, Stats};

/// `__org.chardevd_query-stats`: every chardev's bytes in and out and what
/// it dropped, by cause, and the QMP side's sessions and refusals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryStats;

impl Request for QueryStats {
    const NAME: &'static str = "__org.chardevd_query-stats";
    type Output = Stats;

    #[allow(private_interfaces)]
    async fn execute(self, exec: &Executor) -> Result<Stats, Error> {
        exec.stats().await
    }
}

fn count(n: u64) -> Json {
    Json::UInt(n)
}

fn chardev(c: ChardevStats) -> Json {
    let mut members = vec![
        ("label", Json::Str(c.label)),
        ("bytes-in", count(c.bytes_in)),
        ("bytes-out", count(c.bytes_out)),
        ("dropped-out", count(c.dropped_out)),
        ("dropped-unconnected", count(c.dropped_unconnected)),
        ("dropped-write-error", count(c.dropped_write_error)),
        ("dropped-at-close", count(c.dropped_at_close)),
        ("write-errors", count(c.write_errors)),
        ("dropped-in", count(c.dropped_in)),
        ("log-dropped", count(c.log_dropped)),
    ];
    if let Some(o) = c.overwritten {
        members.push(("overwritten", count(o)));
    }
    Json::object(members)
}

fn qmp(q: QmpStats) -> Json {
    Json::object([
        ("sessions", count(q.sessions)),
        ("sessions-served", count(q.sessions_served)),
        ("sessions-refused", count(q.sessions_refused)),
        ("sessions-cut-off", count(q.sessions_cut_off)),
        ("sessions-hung-up", count(q.sessions_hung_up)),
        ("events-dropped", count(q.events_dropped)),
        ("messages-refused", count(q.messages_refused)),
    ])
}

impl Command for QueryStats {
    const SCHEMA: &'static str = r#"[
{"name": "__org.chardevd_query-stats", "meta-type": "command", "arg-type": "0", "ret-type": "__org.chardevd_Stats"},
{"name": "__org.chardevd_Stats", "meta-type": "object", "members": [{"name": "chardevs", "type": "[__org.chardevd_ChardevStats]"}, {"name": "qmp", "type": "__org.chardevd_QmpStats"}]},
{"name": "[__org.chardevd_ChardevStats]", "element-type": "__org.chardevd_ChardevStats", "meta-type": "array"},
{"name": "__org.chardevd_ChardevStats", "meta-type": "object", "members": [{"name": "label", "type": "str"}, {"name": "bytes-in", "type": "int"}, {"name": "bytes-out", "type": "int"}, {"name": "dropped-out", "type": "int"}, {"name": "dropped-unconnected", "type": "int"}, {"name": "dropped-write-error", "type": "int"}, {"name": "dropped-at-close", "type": "int"}, {"name": "write-errors", "type": "int"}, {"name": "dropped-in", "type": "int"}, {"name": "log-dropped", "type": "int"}, {"name": "overwritten", "default": null, "type": "int"}]},
{"name": "__org.chardevd_QmpStats", "meta-type": "object", "members": [{"name": "sessions", "type": "int"}, {"name": "sessions-served", "type": "int"}, {"name": "sessions-refused", "type": "int"}, {"name": "sessions-cut-off", "type": "int"}, {"name": "sessions-hung-up", "type": "int"}, {"name": "events-dropped", "type": "int"}, {"name": "messages-refused", "type": "int"}]}
]"#;

    fn from_qmp(_args: &Args<'_>) -> Result<Self, Error> {
        Ok(QueryStats)
    }

    fn to_qmp(s: Stats) -> Json {
        Json::object([
            ("chardevs", Json::Array(s.chardevs.into_iter().map(chardev).collect())),
            ("qmp", qmp(s.qmp)),
        ])
    }

    fn output_size(s: &Stats) -> usize {
        s.chardevs.len() * 256
    }
}

impl Handle {
    /// `__org.chardevd_query-stats`: traffic and drop counters.
    pub async fn query_stats(&self) -> Result<Stats, Error> {
        self.run(QueryStats).await
    }
}
