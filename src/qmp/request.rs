//! Request-shape checks: from a framed JSON value to a command name and its
//! arguments, in QEMU's order and with QEMU's texts (`qmp_dispatch`).
use super::error::QmpError;
use crate::json::{qdict_order, Json};

/// A well-formed request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The command name.
    pub name: String,
    /// `arguments`, or an empty object.
    pub args: Json,
    /// `id`, echoed unchanged.
    pub id: Option<Json>,
    /// Sent as `exec-oob`.
    pub oob: bool,
}

/// A request that failed its shape checks; `id` is echoed when it was present.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapeError {
    /// The id to echo (never for non-object input).
    pub id: Option<Json>,
    /// The error.
    pub error: QmpError,
}

/// Check a parsed value as QEMU checks a QMP request.
///
/// `allow_oob` is true once the client negotiated the `oob` capability; without
/// it `exec-oob` is an unexpected member.
pub fn parse_request(value: Json, allow_oob: bool) -> Result<Request, ShapeError> {
    let Json::Object(members) = value else {
        return Err(ShapeError {
            id: None,
            error: QmpError::generic("QMP input must be a JSON object"),
        });
    };
    let id = members.iter().find(|(k, _)| k == "id").map(|(_, v)| v.clone());
    let fail = |desc: String| ShapeError {
        id: id.clone(),
        error: QmpError::generic(desc),
    };
    let mut command: Option<&str> = None;
    // QEMU walks the request dict in QDict order; the first fault wins.
    for (key, v) in qdict_order(&members) {
        match key.as_str() {
            "execute" | "exec-oob" if key == "execute" || allow_oob => {
                if !matches!(v, Json::Str(_)) {
                    return Err(fail(format!("QMP input member '{key}' must be a string")));
                }
                if let Some(prev) = command {
                    return Err(fail(format!("QMP input member '{key}' clashes with '{prev}'")));
                }
                command = Some(key);
            }
            "arguments" => {
                if !matches!(v, Json::Object(_)) {
                    return Err(fail("QMP input member 'arguments' must be an object".into()));
                }
            }
            "id" => {}
            other => return Err(fail(format!("QMP input member '{other}' is unexpected"))),
        }
    }
    let Some(key) = command else {
        return Err(fail("QMP input lacks member 'execute'".into()));
    };
    let oob = key == "exec-oob";
    let name = members
        .iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.as_str())
        .unwrap_or_default()
        .to_owned();
    let args = members
        .iter()
        .find(|(k, _)| k == "arguments")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(Json::empty_object);
    Ok(Request { name, args, id, oob })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::framer::Framer;

    fn req(s: &str, oob: bool) -> Result<Request, ShapeError> {
        let mut out = Vec::new();
        Framer::new().feed(s.as_bytes(), &mut out);
        parse_request(out.remove(0).expect("json"), oob)
    }

    fn desc(s: &str, oob: bool) -> String {
        req(s, oob).map(|_| String::from("ok")).unwrap_or_else(|e| e.error.desc)
    }

    #[test]
    fn shape_errors_use_qemu_texts_and_order() {
        assert_eq!(desc("[1,2]", false), "QMP input must be a JSON object");
        assert_eq!(desc("{}", false), "QMP input lacks member 'execute'");
        assert_eq!(
            desc(r#"{"execute":true}"#, false),
            "QMP input member 'execute' must be a string"
        );
        assert_eq!(
            desc(r#"{"execute":"x","arguments":[]}"#, false),
            "QMP input member 'arguments' must be an object"
        );
        assert_eq!(
            desc(r#"{"execute":"x","extra":1}"#, false),
            "QMP input member 'extra' is unexpected"
        );
        assert_eq!(
            desc(r#"{"exec-oob":"x"}"#, false),
            "QMP input member 'exec-oob' is unexpected"
        );
        assert_eq!(
            desc(r#"{"execute":"a","exec-oob":"a"}"#, true),
            "QMP input member 'execute' clashes with 'exec-oob'"
        );
        assert_eq!(
            desc(r#"{"execute":1,"foo":1}"#, false),
            "QMP input member 'execute' must be a string"
        );
        assert_eq!(
            desc(r#"{"execute":"nosuch","arguments":true}"#, false),
            "QMP input member 'arguments' must be an object"
        );
    }

    #[test]
    fn ids_are_echoed_on_shape_errors_but_not_for_non_objects() {
        assert_eq!(
            req(r#"{"id":[1],"extra":1}"#, false).unwrap_err().id,
            Some(Json::Array(vec![Json::Int(1)]))
        );
        assert_eq!(req("null ", false).unwrap_err().id, None);
        let ok = req(r#"{"execute":"q","id":"x"}"#, false).unwrap();
        assert_eq!((ok.name.as_str(), ok.id), ("q", Some(Json::str("x"))));
    }
}
