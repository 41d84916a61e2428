use super::*;

use crate::types::xorshift::XorShift;

fn read(text: &str) -> Result<Head<'_>, Malformed> {
    Reader::default().read(text.as_bytes())
}

fn what(text: &str) -> String {
    match read(text) {
        Ok(_) => panic!("accepted: {text}"),
        Err(e) => e.what.into_owned(),
    }
}

#[test]
fn reads_the_four_fields_and_nothing_else() {
    let h = read(
        r#"{"spec":{"name":"not me","metadata":{"name":"nor me"}},"apiVersion":"apps/v1",
            "kind":"Deployment","metadata":{"labels":{"name":"x"},"name":"web","namespace":"shop",
            "annotations":{"kind":"y"}},"status":{"replicas":3,"ok":true,"x":null,"f":-1.5e3}}"#,
    )
    .expect("valid");
    assert_eq!(h.api_version.as_deref(), Some("apps/v1"));
    assert_eq!(h.kind.as_deref(), Some("Deployment"));
    assert_eq!(h.name.as_deref(), Some("web"));
    assert_eq!(h.namespace.as_deref(), Some("shop"));
    assert!(matches!(h.name, Some(Cow::Borrowed(_))));

    let h = read(r#" {"kind":"Namespace","metadata":{"name":"a\u0062c"},"apiVersion":null} "#)
        .expect("valid");
    assert_eq!(h.name.as_deref(), Some("abc"));
    assert_eq!(h.api_version, None);
    assert_eq!(read("{}").expect("valid"), Head::default());
    // A key spelled with an escape is the same key.
    let h = read(r#"{"\u006bind":"Secret"}"#).expect("valid");
    assert_eq!(h.kind.as_deref(), Some("Secret"));
}

#[test]
fn refuses_what_is_not_well_formed_and_says_where() {
    let e = read("{\n  \"kind\": \"x\",\n  \"a\": tru\n}").expect_err("bad literal");
    assert_eq!((e.line, e.column), (3, 8), "{e}");
    assert_eq!(e.to_string(), "expected value at line 3 column 8");
    for (text, expected) in [
        ("", "EOF while parsing a value"),
        ("[]", "the item is not a JSON object"),
        ("{", "expected a key (a string)"),
        ("{\"a\":1", "EOF while parsing an object or array"),
        ("{\"a\":1,}", "expected a key (a string)"),
        ("{\"a\":[1,]}", "expected value"),
        ("{\"a\" 1}", "expected `:`"),
        ("{\"a\":1 \"b\":2}", "expected `,` or `}`"),
        ("{\"a\":[1 2]}", "expected `,` or `]`"),
        ("{\"a\":01}", "expected `,` or `}`"),
        ("{\"a\":1.}", "invalid number"),
        ("{\"a\":-}", "invalid number"),
        ("{\"a\":1e}", "invalid number"),
        ("{\"a\":\"\\x\"}", "invalid escape"),
        ("{\"a\":\"\\u12g4\"}", "invalid \\u escape"),
        (
            "{\"a\":\"tab\there\"}",
            "control character (\\u0000-\\u001F) found while parsing a string",
        ),
        ("{\"a\":\"no end", "EOF while parsing a string"),
        ("{} x", "trailing characters"),
        ("{}{}", "trailing characters"),
        ("{\"kind\":1}", "`kind` must be a string"),
        ("{\"kind\":{}}", "`kind` must be a string"),
        ("{\"metadata\":\"x\"}", "`metadata` must be an object"),
        ("{\"metadata\":[]}", "`metadata` must be an object"),
        (
            "{\"metadata\":{\"name\":[\"x\"]}}",
            "`metadata.name` must be a string",
        ),
        ("{\"kind\":\"a\",\"kind\":\"b\"}", "duplicate field `kind`"),
        (
            "{\"metadata\":{\"namespace\":null,\"namespace\":\"b\"}}",
            "duplicate field `metadata.namespace`",
        ),
        (
            "{\"kind\":\"\\ud800\"}",
            "invalid string: unexpected end of hex escape",
        ),
    ] {
        assert_eq!(what(text), expected, "{text}");
    }
    // Only JSON of the wrong shape is told apart from what is not JSON at all.
    for (text, syntax) in [
        ("[]", false),
        ("{\"kind\":1}", false),
        ("x", true),
        ("{\"a\":x}", true),
    ] {
        assert_eq!(
            read(text).map(|_| ()).map_err(|e| e.syntax),
            Err(syntax),
            "{text}"
        );
    }
    let mut bytes = br#"{"a":"caf"#.to_vec();
    bytes.extend([0xC3, 0x28]);
    bytes.extend(br#""}"#);
    let e = Reader::default().read(&bytes).expect_err("invalid UTF-8");
    assert_eq!(e.what, "invalid UTF-8 in a string");
    assert!(
        Reader::default()
            .read("{\"a\":\"café ☕ 😀\"}".as_bytes())
            .is_ok()
    );
}

#[test]
fn deep_nesting_is_refused_without_recursion() {
    let deep = format!(
        "{{\"a\":{}{}}}",
        "[".repeat(MAX_DEPTH),
        "]".repeat(MAX_DEPTH)
    );
    assert_eq!(
        what(&deep),
        format!("nested deeper than {MAX_DEPTH} levels")
    );
    let fine = format!(
        "{{\"a\":{}{}}}",
        "[".repeat(MAX_DEPTH - 2),
        "]".repeat(MAX_DEPTH - 2)
    );
    assert!(read(&fine).is_ok());
}

#[derive(serde::Deserialize)]
struct OldHead {
    #[serde(rename = "apiVersion")]
    api_version: Option<String>,
    kind: Option<String>,
    metadata: Option<OldMeta>,
}

#[derive(serde::Deserialize)]
struct OldMeta {
    name: Option<String>,
    namespace: Option<String>,
}

type Fields = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// What the code this replaced said of the same bytes: serde_json's verdict on well-formedness
/// (`IgnoredAny`, which like the reader accepts lone surrogates in strings nobody reads), on UTF-8
/// text, of one object whose `metadata` is an object or null (maps, which serde_json builds
/// only from `{`), and the struct verification used before (which refuses duplicate fields and
/// wrong types).
fn oracle(bytes: &[u8]) -> Option<Fields> {
    use serde::de::IgnoredAny;
    use std::collections::HashMap;
    std::str::from_utf8(bytes).ok()?;
    serde_json::from_slice::<IgnoredAny>(bytes).ok()?;
    #[derive(serde::Deserialize)]
    struct Shape {
        #[allow(dead_code)]
        metadata: Option<HashMap<String, IgnoredAny>>,
    }
    serde_json::from_slice::<HashMap<String, IgnoredAny>>(bytes).ok()?;
    serde_json::from_slice::<Shape>(bytes).ok()?;
    let old: OldHead = serde_json::from_slice(bytes).ok()?;
    let (name, namespace) = old.metadata.map_or((None, None), |m| (m.name, m.namespace));
    Some((old.api_version, old.kind, name, namespace))
}

const SEEDS: &[&str] = &[
    r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s","namespace":"ns","labels":{"a":"b"}},"data":{"k":"aGVsbG8="},"type":"Opaque"}"#,
    r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"shop","managedFields":[{"fieldsV1":{"f:spec":{"f:replicas":{}}},"time":"2026-01-01T00:00:00Z"}],"annotations":{"x":"{\"a\":[1,2.5e-3,true,false,null]}"}},"spec":{"replicas":3,"template":{"spec":{"containers":[{"name":"c","image":"i:1","args":["-v","\u00e9\\\/"]}]}}},"status":{}}"#,
    r#"{"apiVersion":"v1","kind":"Pod","metadata":{"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs"}],"name":"web"},"spec":{"name":"b","namespace":"c","metadata":{"name":"d"}}}"#,
    r#"{"metadata":{"name":"a"},"spec":{"name":"b","namespace":"c"},"x":[{"kind":"k"},"\ud800",1e400]}"#,
    "{\n  \"kind\" : \"ConfigMap\" ,\r\n\t\"metadata\" : { \"name\" : \"caf\u{e9}\" } , \"data\" : { \"k\" : \"line\\nline\" , \"n\" : -0.0E+1 } }\n",
];

fn mutate(original: &[u8], rng: &mut XorShift) -> Vec<u8> {
    const PIECES: &[&[u8]] = &[
        b"{",
        b"}",
        b"[",
        b"]",
        b",",
        b":",
        b"\"",
        b"\\",
        b"\\u",
        b"0",
        b"-",
        b".",
        b"e",
        b"1",
        b"t",
        b"null",
        b"true",
        b" ",
        b"\n",
        b"\x01",
        b"\xc3",
        b"\xe9",
        b"\"kind\"",
        b"\"name\"",
        b"a",
    ];
    let mut bytes = original.to_vec();
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(3) {
            0 if at < bytes.len() => {
                let len = 1 + rng.below(4).min(bytes.len() - at - 1);
                bytes.drain(at..at + len);
            }
            1 if at < bytes.len() => bytes[at] = PIECES[rng.below(PIECES.len())][0],
            _ => {
                let piece = PIECES[rng.below(PIECES.len())];
                bytes.splice(at..at, piece.iter().copied());
            }
        }
    }
    bytes
}

/// The reader agrees with serde_json on well-formedness and on the four fields, across many
/// damaged documents.
#[test]
fn agrees_with_serde_json_on_damaged_documents() {
    let mut rng = XorShift::new(0x5eed_0016_4a50_0001);
    let mut reader = Reader::default();
    let (mut accepted, mut refused) = (0, 0);
    for round in 0..60_000 {
        let seed = SEEDS[round % SEEDS.len()].as_bytes();
        let bytes = if round < SEEDS.len() {
            seed.to_vec()
        } else {
            mutate(seed, &mut rng)
        };
        let ours: Option<Fields> = reader.read(&bytes).ok().map(|h| {
            (
                h.api_version.map(Cow::into_owned),
                h.kind.map(Cow::into_owned),
                h.name.map(Cow::into_owned),
                h.namespace.map(Cow::into_owned),
            )
        });
        let theirs = oracle(&bytes);
        assert_eq!(
            ours,
            theirs,
            "round {round}: {}",
            String::from_utf8_lossy(&bytes)
        );
        if ours.is_some() {
            accepted += 1;
        } else {
            refused += 1;
        }
    }
    // The comparison means something only if both verdicts occur often.
    assert!(
        accepted > 5_000 && refused > 20_000,
        "{accepted} accepted, {refused} refused"
    );
}

/// Long strings take the `memchr` path: every special byte at every offset of a long string is
/// seen, as in a short one.
#[test]
fn long_strings_are_checked_like_short_ones() {
    for len in [0usize, 7, 8, 15, 16, 17, 63, 64, 65, 130, 1000] {
        let plain = "a".repeat(len);
        let item = format!("{{\"kind\":\"K\",\"x\":\"{plain}\"}}");
        assert!(read(&item).is_ok(), "{len}");
        for at in (0..len).step_by(7) {
            for (special, ok) in [
                (&b"\x01"[..], false),
                (b"\x1f", false),
                (b"\x7f", true),
                (b"\xc3\xa9", true),
                (b"\xc3", false),
                (b"\\n", true),
                (b"\\q", false),
                (b"\\\"", true),
            ] {
                let mut bytes = item.clone().into_bytes();
                let pos = "{\"kind\":\"K\",\"x\":\"".len() + at;
                bytes.splice(pos..pos, special.iter().copied());
                assert_eq!(
                    Reader::default().read(&bytes).is_ok(),
                    ok,
                    "{len} {at} {special:?}"
                );
            }
        }
        let cut = format!("{{\"kind\":\"K\",\"x\":\"{plain}");
        assert_eq!(what(&cut), "EOF while parsing a string", "{len}");
    }
}

/// The token pass answers only as the precise walk would, across damaged documents and with
/// escapes, quotes and runs on every side of a 64-byte block boundary; and it does answer for
/// ordinary items, or it would be a slower path, not a faster one.
#[test]
fn the_token_pass_answers_only_as_the_walk_would() {
    let mut rng = XorShift::new(0x70c3_0016_0000_0002);
    let mut reader = Reader::default();
    let (mut tokens, mut stack) = (Vec::new(), Vec::new());
    let mut shifted: Vec<String> = Vec::new();
    for pad in 0..70 {
        let fill = "x".repeat(pad);
        shifted.push(format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"n{fill}","namespace":"ns"}},"data":{{"{fill}":"{fill}\\\"\\\\\n\\u00e9","k":[true,-1.5e3,null,{{}},[]]}}}}"#
        ));
    }
    let (mut quick_answers, mut walk_answers) = (0, 0);
    for round in 0..80_000 {
        let seed = if round % 2 == 0 {
            SEEDS[round % SEEDS.len()].as_bytes()
        } else {
            shifted[round % shifted.len()].as_bytes()
        };
        let bytes = if round < 200 {
            seed.to_vec()
        } else {
            mutate(seed, &mut rng)
        };
        let walked = reader.walk(&bytes).ok();
        let quick =
            tokens::index(&bytes, &mut tokens).and_then(|t| quick::head(&bytes, t, &mut stack));
        if let Some(q) = &quick {
            assert_eq!(
                Some(q),
                walked.as_ref(),
                "round {round}: {}",
                String::from_utf8_lossy(&bytes)
            );
            quick_answers += 1;
        }
        if walked.is_some() {
            walk_answers += 1;
        }
    }
    // Only seeds with escapes in the four fields (and their mutations) go to the walk.
    assert!(
        quick_answers * 10 > walk_answers * 7 && walk_answers > 10_000,
        "{quick_answers} of {walk_answers}"
    );
}
