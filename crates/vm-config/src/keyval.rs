//! QEMU's `key=value,key=value` option syntax (QemuOpts / keyval).
//!
//! * `,,` inside a value is a literal comma;
//! * the first element may be a bare value for an implied key (`-machine pc` = `type=pc`,
//!   `-object memory-backend-file,...` = `qom-type=...`, `-m 4G` = `size=4G`);
//! * a bare `key` elsewhere means `key=on` (the seed writes `share` for `share=on`), and
//!   `nokey` is not special (QEMU deprecated it).

use crate::ConfigError;

/// An ordered list of properties, as QEMU keeps them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Props(pub Vec<(String, String)>);

impl Props {
    /// The value of `key`, if present (the last occurrence wins, as in QEMU).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Keys not in `known`, for "unknown property" errors.
    pub fn unknown<'a>(&'a self, known: &[&str]) -> Option<&'a str> {
        self.0
            .iter()
            .map(|(k, _)| k.as_str())
            .find(|k| !known.contains(k))
    }

    /// Parses an on/off property (QEMU accepts on/off, yes/no, true/false, y/n).
    pub fn flag(&self, option: &str, key: &str) -> Result<Option<bool>, ConfigError> {
        self.get(key)
            .map(|v| parse_bool(option, key, v))
            .transpose()
    }
}

/// Parses a QEMU boolean.
pub fn parse_bool(option: &str, key: &str, v: &str) -> Result<bool, ConfigError> {
    bool_value(v).ok_or_else(|| {
        ConfigError::new(format!(
            "{option}: parameter '{key}' expects 'on' or 'off', got '{v}'"
        ))
    })
}

/// QEMU's boolean spellings: on/off, yes/no, true/false, y/n.
pub fn bool_value(v: &str) -> Option<bool> {
    match v {
        "on" | "yes" | "true" | "y" => Some(true),
        "off" | "no" | "false" | "n" => Some(false),
        _ => None,
    }
}

/// Splits on single commas; `,,` is a literal comma. Always at least one (maybe empty) item.
/// The one splitter behind `-object`/`-device`/`-drive`, the monitor's `object_add`/
/// `device_add` and the `-qmp`/`-monitor` chardev specs.
pub fn split_opts(s: &str) -> Vec<String> {
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
}

/// Splits `s` into properties; `implied` names the key of a leading bare value.
pub fn parse(option: &str, s: &str, implied: Option<&str>) -> Result<Props, ConfigError> {
    let mut out = Vec::new();
    for (i, item) in split_opts(s).into_iter().enumerate() {
        if item.is_empty() {
            if i == 0 && implied.is_none() {
                continue;
            }
            return Err(ConfigError::new(format!(
                "{option}: empty parameter in '{s}'"
            )));
        }
        match item.split_once('=') {
            Some((k, v)) => {
                if k.is_empty() {
                    return Err(ConfigError::new(format!(
                        "{option}: parameter name missing in '{item}'"
                    )));
                }
                out.push((k.to_string(), v.to_string()));
            }
            None if i == 0 && implied.is_some() => {
                out.push((implied.unwrap_or_default().to_string(), item));
            }
            None => out.push((item, "on".to_string())),
        }
    }
    Ok(Props(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_share_means_on() {
        let p = parse(
            "-object",
            "memory-backend-file,id=mem1,share,mem-path=/x,size=4G",
            Some("qom-type"),
        )
        .unwrap();
        assert_eq!(p.get("qom-type"), Some("memory-backend-file"));
        assert_eq!(p.get("share"), Some("on"));
        assert_eq!(p.get("size"), Some("4G"));
    }

    #[test]
    fn split_opts_and_bool_value() {
        assert_eq!(split_opts("a,,b,c,"), ["a,b", "c", ""]);
        assert_eq!(split_opts(""), [""]);
        assert_eq!(split_opts(",,,,"), [",,"]);
        assert_eq!(bool_value("y"), Some(true));
        assert_eq!(bool_value("false"), Some(false));
        assert_eq!(bool_value("On"), None); // QEMU is case-sensitive here
    }

    #[test]
    fn double_comma_escapes() {
        let p = parse(
            "-object",
            "memory-backend-file,mem-path=/a,,b",
            Some("qom-type"),
        )
        .unwrap();
        assert_eq!(p.get("mem-path"), Some("/a,b"));
    }

    #[test]
    fn empty_items_are_errors() {
        assert!(parse("-device", "nvdimm,,", Some("driver")).is_ok()); // ",," is a literal comma
        assert!(parse("-device", "nvdimm,id=a,", Some("driver")).is_err());
        assert!(parse("-device", "nvdimm,=x", Some("driver")).is_err());
    }

    #[test]
    fn last_occurrence_wins() {
        let p = parse("-m", "1G,size=2G", Some("size")).unwrap();
        assert_eq!(p.get("size"), Some("2G"));
    }
}
