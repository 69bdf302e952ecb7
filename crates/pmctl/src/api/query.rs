//! URL query and path-segment decoding (`%XX`, `+` as space in queries).
//! Invalid escapes are kept literally; the result is lossy UTF-8.

/// Decode `%XX` escapes (not `+`).
pub fn percent_decode(s: &str) -> String {
    decode(s, false)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first value of `key` in `url`'s query string, decoded.
pub fn query_param(url: &str, key: &str) -> Option<String> {
    let (_, q) = url.split_once('?')?;
    let q = q.split_once('#').map_or(q, |(q, _)| q);
    q.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k, true) == key).then(|| decode(v, true))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_and_plus() {
        assert_eq!(
            query_param("/x?path=%2Fdev%2Fdax0.0", "path").as_deref(),
            Some("/dev/dax0.0")
        );
        assert_eq!(
            query_param("/x?a=1&path=a+b%20c", "path").as_deref(),
            Some("a b c")
        );
        assert_eq!(query_param("/x?path", "path").as_deref(), Some(""));
        assert_eq!(query_param("/x", "path"), None);
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("a+b"), "a+b");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
    }
}
