//! The QMP schema chardevd serves: introspection data and argument validation.
//!
//! `schema.json` holds SchemaInfo entities in QEMU's own introspection format,
//! cut from QEMU 10.0.2's `query-qmp-schema` to what chardevd implements
//! (`tools/gen-schema.py` builds it); chardevd's `__org.chardevd_` commands
//! and events carry their own entities (each command in its file), appended
//! when the schema is loaded.
//! The same data drives `query-qmp-schema`, `query-commands` and the argument
//! checks, so introspection can never disagree with what is accepted.
//!
//! [`Schema::check_args`] walks arguments the way QEMU's QAPI input visitor
//! does: members in schema order, the first problem wins, unexpected members
//! are reported when their object is finished, and the texts are QEMU's.

use crate::json::framer::Framer;
use crate::json::{qdict_order, Json};
use std::collections::HashMap;
use std::sync::OnceLock;

const SCHEMA_JSON: &str = include_str!("schema.json");

/// One parsed SchemaInfo entity (only what validation needs).
#[derive(Debug)]
enum Entity {
    Builtin(String),
    Enum(Vec<String>),
    Array(String),
    Object {
        members: Vec<Member>,
        tag: Option<String>,
        variants: Vec<(String, String)>,
    },
    Alternate(Vec<String>),
    Command {
        arg_type: String,
    },
    Event,
}

#[derive(Debug)]
struct Member {
    name: String,
    ty: String,
    optional: bool,
}

/// The loaded schema.
#[derive(Debug)]
pub struct Schema {
    raw: Json,
    entities: HashMap<String, Entity>,
    commands: Vec<String>,
}

/// The process-wide schema (parsed once from the embedded data and the
/// extensions' entities).
pub fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let extensions = crate::commands::TABLE
            .iter()
            .map(|e| e.schema)
            .chain(crate::events::EXTENSION_SCHEMA.iter().copied());
        Schema::parse(SCHEMA_JSON, extensions)
    })
}

/// A JSON array of the embedded data.
fn parse_array(text: &str) -> Vec<Json> {
    let mut framer = Framer::new();
    let mut out = Vec::new();
    framer.feed(text.as_bytes(), &mut out);
    match out.pop() {
        Some(Ok(Json::Array(items))) => items,
        other => panic!("embedded schema data is not a JSON array: {other:?}"),
    }
}

fn str_of<'a>(v: &'a Json, key: &str) -> &'a str {
    v.get(key).and_then(Json::as_str).unwrap_or("")
}

impl Schema {
    fn parse<'a>(text: &str, extensions: impl Iterator<Item = &'a str>) -> Schema {
        let mut items = parse_array(text);
        for ext in extensions.filter(|e| !e.is_empty()) {
            items.extend(parse_array(ext));
        }
        let mut entities = HashMap::new();
        let mut commands = Vec::new();
        for e in &items {
            let name = str_of(e, "name").to_owned();
            let entity = match str_of(e, "meta-type") {
                "builtin" => Entity::Builtin(str_of(e, "json-type").to_owned()),
                "enum" => Entity::Enum(match e.get("values") {
                    Some(Json::Array(v)) => v.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
                    _ => Vec::new(),
                }),
                "array" => Entity::Array(str_of(e, "element-type").to_owned()),
                "object" => {
                    let members = match e.get("members") {
                        Some(Json::Array(m)) => m
                            .iter()
                            .map(|m| Member {
                                name: str_of(m, "name").to_owned(),
                                ty: str_of(m, "type").to_owned(),
                                optional: m.get("default").is_some(),
                            })
                            .collect(),
                        _ => Vec::new(),
                    };
                    let variants = match e.get("variants") {
                        Some(Json::Array(v)) => v
                            .iter()
                            .map(|v| (str_of(v, "case").to_owned(), str_of(v, "type").to_owned()))
                            .collect(),
                        _ => Vec::new(),
                    };
                    Entity::Object {
                        members,
                        tag: e.get("tag").and_then(Json::as_str).map(str::to_owned),
                        variants,
                    }
                }
                "alternate" => Entity::Alternate(match e.get("members") {
                    Some(Json::Array(m)) => m.iter().map(|m| str_of(m, "type").to_owned()).collect(),
                    _ => Vec::new(),
                }),
                "command" => {
                    commands.push(name.clone());
                    Entity::Command {
                        arg_type: str_of(e, "arg-type").to_owned(),
                    }
                }
                _ => Entity::Event,
            };
            entities.insert(name, entity);
        }
        Schema {
            raw: Json::Array(items),
            entities,
            commands,
        }
    }

    /// The `query-qmp-schema` result.
    pub fn introspection(&self) -> &Json {
        &self.raw
    }

    /// Every command name, in schema order (the `query-commands` result).
    pub fn commands(&self) -> &[String] {
        &self.commands
    }

    /// Whether `name` is a command of this schema.
    pub fn has_command(&self, name: &str) -> bool {
        matches!(self.entities.get(name), Some(Entity::Command { .. }))
    }

    /// Check a command's arguments as QEMU's input visitor would.
    ///
    /// `allow_extra` skips the top-level unexpected-member check (`device_add`
    /// passes device properties through as extra members, as in QEMU).
    pub fn check_args(&self, command: &str, args: &Json, allow_extra: bool) -> Result<(), String> {
        let Some(Entity::Command { arg_type }) = self.entities.get(command) else {
            return Err(format!("The command {command} has not been found"));
        };
        let mut cx = Visit {
            schema: self,
            path: Vec::new(),
        };
        match self.entities.get(arg_type.as_str()) {
            Some(Entity::Object { .. }) => cx.visit_object(arg_type, args, None, allow_extra),
            _ => Ok(()),
        }
    }
}

enum Seg {
    Name(String),
    Index(usize),
}

struct Visit<'s> {
    schema: &'s Schema,
    path: Vec<Seg>,
}

impl Visit<'_> {
    /// QEMU's `full_name`: `a.b.c`, list elements as `a[0]`.
    fn full_name(&self) -> String {
        let mut s = String::new();
        for seg in &self.path {
            match seg {
                Seg::Name(n) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(n);
                }
                Seg::Index(i) => s.push_str(&format!("[{i}]")),
            }
        }
        s
    }

    fn type_error(&self, expected: &str) -> String {
        format!(
            "Invalid parameter type for '{}', expected: {expected}",
            self.full_name()
        )
    }

    /// Visit `value` (present) of type `ty`; `local` is the member's own name
    /// (None for list elements), used by enum errors as QEMU does.
    fn visit(&mut self, ty: &str, value: &Json, local: Option<&str>) -> Result<(), String> {
        let Some(entity) = self.schema.entities.get(ty) else {
            return Ok(());
        };
        match entity {
            Entity::Builtin(json_type) => {
                let ok = match json_type.as_str() {
                    "string" => matches!(value, Json::Str(_)),
                    "int" => match value {
                        Json::Int(_) => true,
                        Json::UInt(u) => *u <= i64::MAX as u64,
                        _ => false,
                    },
                    "number" => matches!(value, Json::Int(_) | Json::UInt(_) | Json::Double(_)),
                    "boolean" => matches!(value, Json::Bool(_)),
                    "null" => matches!(value, Json::Null),
                    _ => true,
                };
                if ok {
                    Ok(())
                } else {
                    let expected = match json_type.as_str() {
                        "int" => "integer",
                        "string" => "string",
                        "boolean" => "boolean",
                        "number" => "number",
                        "null" => "null",
                        other => other,
                    };
                    Err(self.type_error(expected))
                }
            }
            Entity::Enum(values) => match value {
                Json::Str(s) if values.iter().any(|v| v == s) => Ok(()),
                Json::Str(s) => Err(format!(
                    "Parameter '{}' does not accept value '{s}'",
                    local.unwrap_or("null")
                )),
                _ => Err(self.type_error("string")),
            },
            Entity::Array(elem) => {
                let Json::Array(items) = value else {
                    return Err(self.type_error("array"));
                };
                for (i, item) in items.iter().enumerate() {
                    self.path.push(Seg::Index(i));
                    let r = self.visit(elem, item, None);
                    self.path.pop();
                    r?;
                }
                Ok(())
            }
            Entity::Object { .. } => self.visit_object(ty, value, local, false),
            Entity::Alternate(types) => {
                // Pick the branch by JSON type, as QEMU's generated visitors do.
                for t in types {
                    let fits = match self.schema.entities.get(t.as_str()) {
                        Some(Entity::Builtin(j)) => match j.as_str() {
                            "string" => matches!(value, Json::Str(_)),
                            "int" | "number" => {
                                matches!(value, Json::Int(_) | Json::UInt(_) | Json::Double(_))
                            }
                            "boolean" => matches!(value, Json::Bool(_)),
                            "null" => matches!(value, Json::Null),
                            _ => true,
                        },
                        Some(Entity::Enum(_)) => matches!(value, Json::Str(_)),
                        Some(Entity::Object { .. }) => matches!(value, Json::Object(_)),
                        Some(Entity::Array(_)) => matches!(value, Json::Array(_)),
                        _ => false,
                    };
                    if fits {
                        return self.visit(t, value, local);
                    }
                }
                Err(format!(
                    "Invalid parameter type for '{}', expected: {}",
                    self.full_name(),
                    local.unwrap_or("value")
                ))
            }
            Entity::Command { .. } | Entity::Event => Ok(()),
        }
    }

    fn visit_object(&mut self, ty: &str, value: &Json, _local: Option<&str>, allow_extra: bool) -> Result<(), String> {
        let Json::Object(dict) = value else {
            return Err(self.type_error("object"));
        };
        let mut seen: Vec<&str> = Vec::new();
        self.visit_members(ty, dict, &mut seen)?;
        if !allow_extra {
            if let Some(k) = first_unexpected(dict, &seen) {
                self.path.push(Seg::Name(k.to_owned()));
                let name = self.full_name();
                self.path.pop();
                return Err(format!("Parameter '{name}' is unexpected"));
            }
        }
        Ok(())
    }

    fn visit_members<'p>(
        &mut self,
        ty: &str,
        dict: &'p [(String, Json)],
        seen: &mut Vec<&'p str>,
    ) -> Result<(), String> {
        let Some(Entity::Object { members, tag, variants }) = self.schema.entities.get(ty) else {
            return Ok(());
        };
        for m in members {
            match dict.iter().find(|(k, _)| *k == m.name) {
                Some((k, v)) => {
                    seen.push(k.as_str());
                    self.path.push(Seg::Name(k.clone()));
                    let r = self.visit(&m.ty, v, Some(&m.name));
                    self.path.pop();
                    r?;
                }
                None if m.optional => {}
                None => {
                    self.path.push(Seg::Name(m.name.clone()));
                    let name = self.full_name();
                    self.path.pop();
                    return Err(format!("Parameter '{name}' is missing"));
                }
            }
        }
        if let Some(tag) = tag {
            let tag_value = dict.iter().find(|(k, _)| k == tag).and_then(|(_, v)| v.as_str());
            if let Some(case) = tag_value {
                if let Some((_, vty)) = variants.iter().find(|(c, _)| c == case) {
                    let vty = vty.clone();
                    self.visit_members(&vty, dict, seen)?;
                }
            }
        }
        Ok(())
    }
}

/// GLib's `g_str_hash` (djb2 over signed chars).
fn g_str_hash(key: &str) -> u32 {
    crate::json::c_bytes(key).fold(5381u32, |h, b| h.wrapping_mul(33).wrapping_add(b as i8 as i32 as u32))
}

/// The unexpected member QEMU reports when several are left.
///
/// QEMU keeps the not-yet-visited keys of an object in a GLib hash table
/// (filled in QDict order, visited keys removed) and reports the first one
/// its iterator yields. For objects of up to 7 members the table keeps its
/// initial 8 slots, and this reproduces its slot order exactly; larger
/// objects (where GLib's in-place resizing decides) fall back to QDict order.
fn first_unexpected<'a>(dict: &'a [(String, Json)], seen: &[&str]) -> Option<&'a str> {
    let ordered = qdict_order(dict);
    let left: Vec<&str> = ordered
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !seen.contains(k))
        .collect();
    if left.len() <= 1 || dict.len() > 7 {
        return left.first().copied();
    }
    let mut slots: [Option<&str>; 8] = [None; 8];
    for (k, _) in &ordered {
        let hash = g_str_hash(k).max(2);
        let mut idx = (hash.wrapping_mul(11) % 7) as usize;
        let mut step = 0;
        while slots[idx].is_some() {
            step += 1;
            idx = (idx + step) & 7;
        }
        slots[idx] = Some(k.as_str());
    }
    slots.iter().flatten().copied().find(|k| left.contains(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Json {
        let mut f = Framer::new();
        let mut out = Vec::new();
        f.feed(s.as_bytes(), &mut out);
        out.remove(0).expect("valid json")
    }

    fn check(cmd: &str, args: &str) -> Result<(), String> {
        schema().check_args(cmd, &parse(args), false)
    }

    #[test]
    fn the_first_unexpected_key_follows_qemus_c0_80_hashes() {
        // QEMU 10.0.2 names '' here, not the key with U+0000 in it.
        assert_eq!(
            check("query-chardev", r#"{"":1,"\u0000\u0000a\u0000":2}"#),
            Err("Parameter '' is unexpected".into())
        );
    }

    #[test]
    fn missing_wrong_type_unexpected_and_enum_errors_use_qemu_words() {
        assert_eq!(
            check("ringbuf-read", r#"{"device":"a"}"#),
            Err("Parameter 'size' is missing".into())
        );
        assert_eq!(
            check("ringbuf-read", r#"{"device":"a","size":"3"}"#),
            Err("Invalid parameter type for 'size', expected: integer".into())
        );
        assert_eq!(
            check("ringbuf-read", r#"{"device":"a","size":1.5}"#),
            Err("Invalid parameter type for 'size', expected: integer".into())
        );
        assert_eq!(
            check("ringbuf-read", r#"{"device":"a","size":3,"foo":1}"#),
            Err("Parameter 'foo' is unexpected".into())
        );
        assert_eq!(
            check("ringbuf-read", r#"{"device":"a","size":3,"format":"hex"}"#),
            Err("Parameter 'format' does not accept value 'hex'".into())
        );
        assert_eq!(
            check("query-chardev", r#"{"x":1}"#),
            Err("Parameter 'x' is unexpected".into())
        );
    }

    #[test]
    fn nested_paths_and_union_tags() {
        assert_eq!(
            check(
                "chardev-add",
                r#"{"id":"s","backend":{"type":"socket","data":{"addr":{"type":"inet","data":{"host":"h"}}}}}"#
            ),
            Err("Parameter 'backend.data.addr.data.port' is missing".into())
        );
        assert_eq!(
            check("chardev-add", r#"{"id":"s","backend":{"type":"bogus"}}"#),
            Err("Parameter 'type' does not accept value 'bogus'".into())
        );
        assert_eq!(
            check("chardev-add", r#"{"id":"s","backend":{"type":"null","data":{"x":1}}}"#),
            Err("Parameter 'backend.data.x' is unexpected".into())
        );
        assert_eq!(
            check("qmp_capabilities", r#"{"enable":[1]}"#),
            Err("Invalid parameter type for 'enable[0]', expected: string".into())
        );
        assert_eq!(
            check("qmp_capabilities", r#"{"enable":["nope"]}"#),
            Err("Parameter 'null' does not accept value 'nope'".into())
        );
        assert_eq!(
            check(
                "chardev-add",
                r#"{"id":"r","backend":{"type":"ringbuf","data":{"size":8}}}"#
            ),
            Ok(())
        );
    }
}
