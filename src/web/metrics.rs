//! `GET /metrics`: the numbers of `__org.chardevd_query-stats` (and the
//! consoles' clients and open states) in Prometheus' text format 0.0.4.
use crate::api::execute::Executor;
use crate::error::Error;
use std::fmt::Write;

/// The format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A chardev's backend open, frontend open, console clients.
type State = (bool, bool, Option<u64>);

/// A label value, escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// One metric family: its help, its type, then its samples.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: impl IntoIterator<Item = (String, u64)>) {
    let _ = writeln!(out, "# HELP chardevd_{name} {help}");
    let _ = writeln!(out, "# TYPE chardevd_{name} {kind}");
    for (labels, v) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "chardevd_{name} {v}");
        } else {
            let _ = writeln!(out, "chardevd_{name}{{{labels}}} {v}");
        }
    }
}

/// The page.
pub async fn render(exec: &Executor) -> Result<String, Error> {
    let stats = exec.stats().await?;
    let states: std::collections::HashMap<String, State> = exec
        .directory()?
        .list()
        .into_iter()
        .map(|(id, _, s)| (id, (s.backend_open(), s.frontend_open(), s.clients())))
        .collect();
    let c = &stats.chardevs;
    let by = |f: fn(&crate::stats::ChardevStats) -> u64| {
        c.iter()
            .map(move |s| (format!("chardev=\"{}\"", label(&s.label)), f(s)))
            .collect::<Vec<_>>()
    };
    let mut out = String::new();
    family(
        &mut out,
        "chardev_bytes_in_total",
        "counter",
        "Bytes read from a chardev's backend for its frontends.",
        by(|s| s.bytes_in),
    );
    family(
        &mut out,
        "chardev_bytes_out_total",
        "counter",
        "Bytes the frontends wrote that the backend took.",
        by(|s| s.bytes_out),
    );
    let dropped = c.iter().flat_map(|s| {
        let l = label(&s.label);
        [
            ("unconnected", s.dropped_unconnected),
            ("write_error", s.dropped_write_error),
            ("at_close", s.dropped_at_close),
        ]
        .map(|(cause, v)| (format!("chardev=\"{l}\",cause=\"{cause}\""), v))
    });
    family(
        &mut out,
        "chardev_dropped_out_bytes_total",
        "counter",
        "Output bytes dropped, by cause.",
        dropped,
    );
    family(
        &mut out,
        "chardev_dropped_in_bytes_total",
        "counter",
        "Input bytes dropped (no frontend took them).",
        by(|s| s.dropped_in),
    );
    family(
        &mut out,
        "chardev_write_errors_total",
        "counter",
        "Failed writes to the backend.",
        by(|s| s.write_errors),
    );
    family(
        &mut out,
        "chardev_log_dropped_bytes_total",
        "counter",
        "Bytes the log file could not take.",
        by(|s| s.log_dropped),
    );
    let overwritten = c
        .iter()
        .filter_map(|s| s.overwritten.map(|o| (format!("chardev=\"{}\"", label(&s.label)), o)));
    family(
        &mut out,
        "chardev_ring_overwritten_bytes_total",
        "counter",
        "Ring bytes overwritten before anyone read them.",
        overwritten,
    );
    let state = |f: fn(&State) -> Option<u64>| {
        c.iter()
            .filter_map(|s| {
                let v = f(states.get(&s.label)?)?;
                Some((format!("chardev=\"{}\"", label(&s.label)), v))
            })
            .collect::<Vec<_>>()
    };
    family(
        &mut out,
        "chardev_open",
        "gauge",
        "1 while the backend is open (a client connected, a file open).",
        state(|t| Some(t.0 as u64)),
    );
    family(
        &mut out,
        "chardev_frontend_open",
        "gauge",
        "query-chardev's frontend-open.",
        state(|t| Some(t.1 as u64)),
    );
    family(
        &mut out,
        "chardev_clients",
        "gauge",
        "A console's clients now.",
        state(|t| t.2),
    );
    let q = &stats.qmp;
    family(
        &mut out,
        "qmp_sessions",
        "gauge",
        "QMP sessions now.",
        [(String::new(), q.sessions)],
    );
    family(
        &mut out,
        "qmp_sessions_served_total",
        "counter",
        "QMP sessions served.",
        [(String::new(), q.sessions_served)],
    );
    let ended = [
        ("refused", q.sessions_refused),
        ("cut_off", q.sessions_cut_off),
        ("hung_up", q.sessions_hung_up),
    ]
    .map(|(how, v)| (format!("how=\"{how}\""), v));
    family(
        &mut out,
        "qmp_sessions_ended_total",
        "counter",
        "QMP sessions refused, cut off or whose client hung up.",
        ended,
    );
    family(
        &mut out,
        "qmp_events_dropped_total",
        "counter",
        "QMP events dropped for slow clients.",
        [(String::new(), q.events_dropped)],
    );
    family(
        &mut out,
        "qmp_messages_refused_total",
        "counter",
        "QMP messages refused (too large, malformed).",
        [(String::new(), q.messages_refused)],
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_escapes() {
        let mut out = String::new();
        family(
            &mut out,
            "x_total",
            "counter",
            "Help.",
            [(format!("chardev=\"{}\"", label("a\"b\\c")), 3)],
        );
        assert_eq!(
            out,
            "# HELP chardevd_x_total Help.\n# TYPE chardevd_x_total counter\nchardevd_x_total{chardev=\"a\\\"b\\\\c\"} 3\n"
        );
    }
}
