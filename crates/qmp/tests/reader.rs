//! The streaming reader: limits, recovery, chunking invariance, and the fuzz entry point.

use proptest::prelude::*;
use qmp::fuzz_qmp_reader;
use qmp::json::{Json, Number};
use qmp::reader::{Limits, MessageReader, ReadItem};

fn feed_all(r: &mut MessageReader, data: &[u8]) -> Vec<ReadItem> {
    r.feed(data)
}

#[test]
fn several_objects_per_line_and_scalars() {
    let mut r = MessageReader::default();
    let out = feed_all(&mut r, b"{\"a\":1}{\"b\":[true,null]} 42 \"s\"\n");
    assert_eq!(
        out,
        vec![
            Ok(Json::Object(vec![(
                "a".into(),
                Json::Number(Number::Int(1))
            )])),
            Ok(Json::Object(vec![(
                "b".into(),
                Json::Array(vec![Json::Bool(true), Json::Null])
            )])),
            Ok(Json::Number(Number::Int(42))),
            Ok(Json::String("s".into())),
        ]
    );
    assert!(r.is_idle());
}

#[test]
fn numbers_follow_qemu_classification() {
    let mut r = MessageReader::default();
    let out = feed_all(
        &mut r,
        b"[9223372036854775807, 9223372036854775808, 18446744073709551616, -1.5e3, 0.25]",
    );
    assert_eq!(
        out,
        vec![Ok(Json::Array(vec![
            Json::Number(Number::Int(i64::MAX)),
            Json::Number(Number::UInt(1 << 63)),
            Json::Number(Number::Float(18446744073709551616.0)),
            Json::Number(Number::Float(-1500.0)),
            Json::Number(Number::Float(0.25)),
        ]))]
    );
}

#[test]
fn oversized_message_is_reported_once_without_keeping_it() {
    let limits = Limits {
        max_bytes: 1024,
        ..Limits::default()
    };
    let mut r = MessageReader::new(limits);
    let mut out = feed_all(&mut r, b"{\"execute\": \"x\", \"arguments\": {\"a\": \"");
    let chunk = vec![b'A'; 64 * 1024];
    for _ in 0..32 {
        out.extend(feed_all(&mut r, &chunk));
    }
    out.extend(feed_all(&mut r, b"\"}}{\"ok\": 1}"));
    assert_eq!(
        out,
        vec![
            Err("JSON token size limit exceeded".to_string()),
            Ok(Json::Object(vec![(
                "ok".into(),
                Json::Number(Number::Int(1))
            )])),
        ]
    );
}

#[test]
fn nesting_and_token_limits() {
    let mut r = MessageReader::new(Limits {
        max_depth: 8,
        ..Limits::default()
    });
    let mut data = vec![b'['; 20];
    data.extend(vec![b']'; 20]);
    data.extend_from_slice(b"[[1]]");
    let out = feed_all(&mut r, &data);
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[0], Err("JSON nesting depth limit exceeded".to_string()));
    assert!(out[1].is_ok());

    let mut r = MessageReader::new(Limits {
        max_tokens: 10,
        ..Limits::default()
    });
    let out = feed_all(&mut r, b"[1,2,3,4,5,6,7,8,9] [1]");
    assert_eq!(
        out,
        vec![
            Err("JSON token count limit exceeded".to_string()),
            Ok(Json::Array(vec![Json::Number(Number::Int(1))]))
        ]
    );
}

#[test]
fn stray_bytes_and_recovery() {
    let mut r = MessageReader::default();
    let out = feed_all(&mut r, b"\xff{\"a\":01}{\"b\":2}");
    assert_eq!(
        out,
        vec![
            Err("JSON parse error, stray '\u{FFFD}'".to_string()),
            Err("JSON parse error, stray '01'".to_string()),
            Err("JSON parse error, expecting value".to_string()),
            Ok(Json::Object(vec![(
                "b".into(),
                Json::Number(Number::Int(2))
            )])),
        ]
    );
    // Garbage words are "invalid keyword" at top level, uppercase is a stray.
    let out = feed_all(&mut r, b"hello X\n");
    assert_eq!(
        out,
        vec![
            Err("JSON parse error, invalid keyword 'hello'".to_string()),
            Err("JSON parse error, stray 'X'".to_string()),
        ]
    );
}

#[test]
fn strings_escapes_and_utf8() {
    let mut r = MessageReader::default();
    let out = feed_all(
        &mut r,
        "[\"\\ud83d\\ude00\", 'a\\'b\"c', \"é\", \"\\/\"]".as_bytes(),
    );
    assert_eq!(
        out,
        vec![Ok(Json::Array(vec![
            Json::String("😀".into()),
            Json::String("a'b\"c".into()),
            Json::String("é".into()),
            Json::String("/".into()),
        ]))]
    );
    let out = feed_all(&mut r, b"[\"\\u0000\"] [\"\xc3\"] [\"\\ud800x\"]");
    assert_eq!(
        out,
        vec![
            Err("JSON parse error, \\u0000 is not supported".to_string()),
            Err("JSON parse error, invalid UTF-8 sequence in string".to_string()),
            Err("JSON parse error, missing \\uDC00-\\uDFFF escape".to_string()),
        ]
    );
}

#[test]
fn output_is_ascii_qemu_style() {
    let v = Json::Object(vec![
        ("s".into(), Json::String("é\u{1}😀\"\\".into())),
        (
            "l".into(),
            Json::Array(vec![
                Json::Number(Number::Float(1.5)),
                Json::Number(Number::UInt(u64::MAX)),
            ]),
        ),
    ]);
    assert_eq!(
        v.to_qemu_string(),
        r#"{"s": "\u00E9\u0001\uD83D\uDE00\"\\", "l": [1.5, 18446744073709551615]}"#
    );
}

#[test]
fn fuzz_entry_point_edge_inputs() {
    let cases: Vec<Vec<u8>> = vec![
        vec![],
        vec![0],
        vec![7, 0xff, 0xfe, 0, b'{'],
        b"\x03{\"execute\":\"qmp_capabilities\"}{\"execute\":\"device_del\",\"arguments\":{\"id\":\"x\"}}".to_vec(),
        b"\x01{\"execute\":\"human-monitor-command\",\"arguments\":{\"command-line\":\"info status\"}}".to_vec(),
        [vec![5u8], vec![b'['; 5000]].concat(),
        [vec![9u8], b"\"".to_vec(), vec![b'a'; 10000]].concat(),
        b"\x02-0.0e-0 1E400 -".to_vec(),
    ];
    for c in cases {
        fuzz_qmp_reader(&c);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn fuzz_never_panics_on_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        fuzz_qmp_reader(&data);
    }

    #[test]
    fn fuzz_never_panics_on_json_like_bytes(
        data in proptest::collection::vec(
            prop::sample::select(b"{}[]:,\"'\\ \n\t0123456789-.eEtruefalsnl\xff\x01abcexecute".to_vec()), 0..400)
    ) {
        let mut d = vec![3u8];
        d.extend(data);
        fuzz_qmp_reader(&d);
    }

    /// However the bytes are split into reads, the messages are the same.
    #[test]
    fn chunking_does_not_matter(
        objs in proptest::collection::vec(("k[a-z]{0,7}", any::<i64>(), "\\PC{0,12}"), 1..6),
        cut in 1usize..17,
    ) {
        let mut text = String::new();
        for (k, n, s) in &objs {
            let v = Json::Object(vec![(k.clone(), Json::Number(Number::Int(*n))), ("s".into(), Json::String(s.clone()))]);
            text.push_str(&v.to_qemu_string());
            if n % 2 == 0 { text.push('\n'); }
        }
        let mut whole = MessageReader::default();
        let expected = whole.feed(text.as_bytes());
        prop_assert_eq!(expected.len(), objs.len());
        prop_assert!(expected.iter().all(|r| r.is_ok()));
        let mut r = MessageReader::default();
        let mut got = Vec::new();
        for c in text.as_bytes().chunks(cut) {
            got.extend(r.feed(c));
        }
        prop_assert_eq!(got, expected);
    }
}
