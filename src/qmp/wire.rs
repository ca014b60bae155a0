//! QMP messages: the greeting, success and error replies.
use super::error::QmpError;
use crate::json::Json;

/// The greeting object, offering `oob` or not.
pub fn greeting_with(oob: bool) -> Json {
    let caps = if oob { vec![Json::str("oob")] } else { Vec::new() };
    Json::object([(
        "QMP",
        Json::object([
            ("version", crate::commands::QueryVersion::now()),
            ("capabilities", Json::Array(caps)),
        ]),
    )])
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
