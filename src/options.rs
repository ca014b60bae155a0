//! QEMU's option-string syntax (`-chardev`, `-qmp`, `-device`), pure.
//!
//! `key=value` pairs separated by commas, with `,,` standing for a literal
//! comma; the first item may omit its key (the backend name for `-chardev`,
//! the driver for `-device`). Booleans take `on`/`off` (also `yes`/`no`,
//! `true`/`false`), and sizes take QEMU's suffixes (`64K`, `1M`).
//!
//! ```
//! use chardevd::internals::options::Opts;
//! let mut o = Opts::parse("ringbuf,id=a,,b,size=64K");
//! assert_eq!(o.take_positional().as_deref(), Some("ringbuf"));
//! assert_eq!(o.take("id").as_deref(), Some("a,b"));
//! assert_eq!(o.take_size("size"), Ok(Some(65536)));
//! assert!(o.rest().is_empty());
//! ```

/// Split `a=b,c=d` with `,,` escapes; an item without `=` is returned with an
/// empty key.
pub fn split_opts(s: &str) -> Vec<(String, String)> {
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ',' {
            if chars.peek() == Some(&',') {
                chars.next();
                cur.push(',');
            } else {
                items.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
    }
    items.push(cur);
    items
        .into_iter()
        .map(|item| match item.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (String::new(), item),
        })
        .collect()
}

/// Parse a QEMU boolean.
pub fn parse_bool(key: &str, v: &str) -> Result<bool, String> {
    match v {
        "on" | "yes" | "true" => Ok(true),
        "off" | "no" | "false" => Ok(false),
        _ => Err(format!("Parameter '{key}' expects 'on' or 'off'")),
    }
}

/// Parse a QEMU size (`65536`, `64K`, `1M`, `2G`).
pub fn parse_size(key: &str, v: &str) -> Result<i64, String> {
    let err = || {
        format!(
            "Parameter '{key}' expects a non-negative number below 2^64\n\
             Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n\
             and exabytes, respectively."
        )
    };
    let (num, mult) = match v.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: i64 = match c.to_ascii_uppercase() {
                'B' => 1,
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                'P' => 1 << 50,
                'E' => 1 << 60,
                _ => return Err(err()),
            };
            (&v[..i], m)
        }
        _ => (v, 1),
    };
    let n: i64 = num.parse().map_err(|_| err())?;
    if n < 0 {
        return Err(err());
    }
    n.checked_mul(mult).ok_or_else(err)
}

/// An option string being taken apart key by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opts {
    items: Vec<(String, String)>,
}

impl Opts {
    /// Split an option string.
    pub fn parse(s: &str) -> Opts {
        Opts { items: split_opts(s) }
    }

    /// Options already split (and expanded) into key-value pairs.
    pub fn from_items(items: Vec<(String, String)>) -> Opts {
        Opts { items }
    }

    /// The leading item without a key (`ringbuf` in `ringbuf,id=x`).
    pub fn take_positional(&mut self) -> Option<String> {
        if self.items.first().is_some_and(|(k, _)| k.is_empty()) {
            Some(self.items.remove(0).1)
        } else {
            None
        }
    }

    /// The value of `key` (the last one if repeated, as QEMU).
    pub fn take(&mut self, key: &str) -> Option<String> {
        let mut found = None;
        while let Some(i) = self.items.iter().position(|(k, _)| k == key) {
            found = Some(self.items.remove(i).1);
        }
        found
    }

    /// A boolean option.
    pub fn take_bool(&mut self, key: &str) -> Result<Option<bool>, String> {
        self.take(key).map(|v| parse_bool(key, &v)).transpose()
    }

    /// A size option.
    pub fn take_size(&mut self, key: &str) -> Result<Option<i64>, String> {
        self.take(key).map(|v| parse_size(key, &v)).transpose()
    }

    /// The items left, in order.
    pub fn rest(&self) -> &[(String, String)] {
        &self.items
    }
}

/// QEMU's `id_wellformed`: a letter, then letters, digits, '-', '.', '_'.
pub fn id_wellformed(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_commas_escape_a_comma() {
        assert_eq!(
            split_opts("ringbuf,id=a,,b,size=4"),
            vec![
                ("".into(), "ringbuf".into()),
                ("id".into(), "a,b".into()),
                ("size".into(), "4".into())
            ]
        );
    }

    #[test]
    fn sizes_take_qemu_suffixes() {
        assert_eq!(parse_size("size", "64K"), Ok(65536));
        assert_eq!(parse_size("size", "1M"), Ok(1 << 20));
        assert_eq!(parse_size("size", "512"), Ok(512));
        assert!(parse_size("size", "-1").is_err());
        assert!(parse_size("size", "1Q").is_err());
    }

    #[test]
    fn options_are_taken_one_by_one() {
        let mut o = Opts::parse("file,path=/a,append=on,bogus=1");
        assert_eq!(o.take_positional().as_deref(), Some("file"));
        assert_eq!(o.take_bool("append"), Ok(Some(true)));
        assert_eq!(o.take("path").as_deref(), Some("/a"));
        assert_eq!(o.rest(), &[("bogus".to_owned(), "1".to_owned())]);
    }
}
