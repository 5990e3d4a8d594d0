//! MySQL partial JSON updates (`PARTIAL_UPDATE_ROWS_EVENT`, type 39, written
//! with `binlog_row_value_options=PARTIAL_JSON`), pure.
//!
//! Flow in: per row of the event, after the before image, the *shared
//! image*, then the after image in which a JSON column may hold a list of
//! diffs instead of a document. Flow out: the full JSON text of such a
//! column, the diffs applied to its value in the before image, so the row
//! reaches the message as an ordinary update.
//!
//! Format (MySQL `rpl_record.h`, `json_diff.cc`):
//! * shared image: `value_options`, a length-encoded integer whose only bit
//!   is `1` = PARTIAL_JSON_UPDATES; when set, `partial_bits` follow: one bit
//!   per JSON column of the table (present in the images or not), LSB first,
//!   `ceil(json columns / 8)` bytes; a set bit says the column's after value
//!   is diffs. Without the bit there are no partial bits and every value is
//!   whole.
//! * a partial value: a 4-byte little-endian length, then diffs until it is
//!   used up, each: operation (1 byte: 0 REPLACE, 1 INSERT, 2 REMOVE), path
//!   (length-encoded length, then the path as text, e.g. `$.a[2]."b c"`),
//!   and except for REMOVE the value (length-encoded length, then MySQL
//!   binary JSON, read by `jsonb`).
//!
//! Applying a diff follows MySQL's `apply_json_diffs`: REPLACE needs the
//! path to exist; INSERT needs its parent to exist and, in an object, the
//! member not to (in an array, a position past the end appends); REMOVE
//! needs the path to exist. A member is inserted where MySQL's binary
//! format would store it (keys ordered by length, then bytes), so the text
//! matches what a full after image would give. The document is edited as
//! JSON text: only the containers along the path are split, everything
//! else is copied byte for byte as `jsonb` rendered it.
//!
//! Failure: any of these is a [`DecodeError::PartialJson`] naming the
//! column, and the task stops: unknown `value_options` bits or operation, a
//! truncated diff, a path that is not a plain member/array-cell path, a
//! value that is not binary JSON, a path that does not apply to the
//! document, and a partial column without a value in the before image
//! (the preflight requires `binlog_row_image=FULL`, so it has one).

use super::charset::escape_utf8;
use super::codes::column as types;
use super::column::{Column, Table};
use super::cursor::Cursor;
use super::error::DecodeError;
use super::jsonb::write_jsonb;

/// The `value_options` bit of partial JSON updates.
pub const PARTIAL_JSON_UPDATES: u64 = 1;
/// Diff operations.
pub const REPLACE: u8 = 0;
pub const INSERT: u8 = 1;
pub const REMOVE: u8 = 2;

/// Which JSON columns of a row's after image hold diffs.
#[derive(Debug, Clone, Copy)]
pub struct PartialBits<'a> {
    bits: &'a [u8],
}

impl PartialBits<'_> {
    /// Whether the `n`-th JSON column of the table (0-based) holds diffs.
    pub fn is_partial(&self, n: usize) -> bool {
        self.bits
            .get(n / 8)
            .is_some_and(|b| b & (1 << (n % 8)) != 0)
    }
}

/// Reads the shared image at `c`; `None` when no value is partial.
pub(crate) fn shared_image<'a>(
    c: &mut Cursor<'a>,
    table: &Table,
) -> Result<Option<PartialBits<'a>>, DecodeError> {
    let options = c.packed("shared image value options")?;
    if options & !PARTIAL_JSON_UPDATES != 0 {
        return Err(DecodeError::Malformed {
            type_code: super::codes::event::PARTIAL_UPDATE_ROWS,
            what: "unknown value_options bits in the shared image",
        });
    }
    if options == 0 {
        return Ok(None);
    }
    let json_columns = table
        .columns
        .iter()
        .filter(|c| c.type_code == types::JSON)
        .count();
    let bits = c.bytes(json_columns.div_ceil(8), "shared image partial bits")?;
    Ok(Some(PartialBits { bits }))
}

/// One diff of a partial value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff<'a> {
    pub op: u8,
    pub path: Vec<Leg>,
    /// Binary JSON of the new value (absent for REMOVE).
    pub value: Option<&'a [u8]>,
}

/// One step of a diff's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leg {
    Member(String),
    /// `[n]`.
    Index(usize),
    /// `[last]` (0), `[last-n]` (n).
    FromLast(usize),
}

/// Reads a partial value (length and diffs) at `c`.
pub(crate) fn read_diffs<'a>(
    c: &mut Cursor<'a>,
    col: &Column,
) -> Result<Vec<Diff<'a>>, DecodeError> {
    let bad = |what| DecodeError::PartialJson {
        column: col.name.clone(),
        what,
    };
    let len = c.u32("partial json length")? as usize;
    let mut d = Cursor::new(c.bytes(len, "partial json diffs")?);
    let mut diffs = Vec::new();
    while !d.is_empty() {
        let truncated = |_| bad("diff truncated");
        let op = d.u8("json diff operation").map_err(truncated)?;
        if op > REMOVE {
            return Err(bad("unknown diff operation"));
        }
        let path = d.packed_bytes("json diff path").map_err(truncated)?;
        let path = parse_path(path).map_err(bad)?;
        let value = if op == REMOVE {
            None
        } else {
            Some(d.packed_bytes("json diff value").map_err(truncated)?)
        };
        diffs.push(Diff { op, path, value });
    }
    Ok(diffs)
}

/// Appends the JSON text of `before` (the column's text in the before
/// image) with `diffs` applied.
pub fn write_patched(
    out: &mut Vec<u8>,
    col: &Column,
    before: Option<&[u8]>,
    diffs: &[Diff<'_>],
) -> Result<(), DecodeError> {
    let bad = |what| DecodeError::PartialJson {
        column: col.name.clone(),
        what,
    };
    let mut doc = before
        .ok_or(bad("no before image value to apply the diffs to"))?
        .to_vec();
    let mut next = Vec::with_capacity(doc.len() + 16);
    let mut value = Vec::new();
    for diff in diffs {
        value.clear();
        if let Some(v) = diff.value {
            write_jsonb(&mut value, v).map_err(|_| bad("diff value is not binary JSON"))?;
        }
        next.clear();
        edit(&doc, &diff.path, diff.op, &value, &mut next).map_err(bad)?;
        std::mem::swap(&mut doc, &mut next);
    }
    out.extend_from_slice(&doc);
    Ok(())
}

type Res<T> = Result<T, &'static str>;

/// Parses a diff path: `$` then `.member`, `."quoted member"`, `[n]`,
/// `[last]` or `[last-n]` legs. Wildcards and ranges never occur in diffs.
pub fn parse_path(p: &[u8]) -> Res<Vec<Leg>> {
    let s = std::str::from_utf8(p).map_err(|_| "path is not UTF-8")?;
    let mut rest = s
        .trim_start()
        .strip_prefix('$')
        .ok_or("path does not start with $")?;
    let mut legs = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        if let Some(r) = rest.strip_prefix('.') {
            let r = r.trim_start();
            if r.starts_with('"') {
                let end = string_end(r.as_bytes(), 0).ok_or("unterminated quoted member")?;
                let name: String =
                    serde_json::from_str(&r[..end]).map_err(|_| "bad quoted member")?;
                legs.push(Leg::Member(name));
                rest = &r[end..];
            } else {
                let end = r
                    .find(|c: char| c == '.' || c == '[' || c.is_whitespace())
                    .unwrap_or(r.len());
                let name = &r[..end];
                if name.is_empty() || name == "*" {
                    return Err("path member is empty or a wildcard");
                }
                legs.push(Leg::Member(name.to_string()));
                rest = &r[end..];
            }
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or("unterminated array index")?;
            let inner: String = r[..end].chars().filter(|c| !c.is_whitespace()).collect();
            let number = |t: &str| t.parse::<usize>().map_err(|_| "bad array index");
            legs.push(if inner == "last" {
                Leg::FromLast(0)
            } else if let Some(n) = inner.strip_prefix("last-") {
                Leg::FromLast(number(n)?)
            } else {
                Leg::Index(number(&inner)?)
            });
            rest = &r[end + 1..];
        } else {
            return Err("bad path leg");
        }
    }
    if legs.is_empty() {
        return Err("diff on the whole document");
    }
    Ok(legs)
}

/// Writes `doc` with one diff applied into `out`.
fn edit(doc: &[u8], legs: &[Leg], op: u8, value: &[u8], out: &mut Vec<u8>) -> Res<()> {
    let not_found = "diff path not found in the before image";
    let (leg, deeper) = legs.split_first().ok_or(not_found)?;
    let doc = trim(doc);
    match (doc.first(), leg) {
        (Some(b'{'), Leg::Member(name)) => {
            let members = object_members(doc)?;
            let found = members
                .iter()
                .position(|(k, _)| key_text(doc, *k).as_deref() == Some(name.as_str()));
            let mut items: Vec<Item> = members.iter().map(|&(k, v)| Item::Member(k, v)).collect();
            let mut key = Vec::new();
            match (deeper.is_empty(), op, found) {
                (false, _, Some(i)) => items[i] = Item::Edited(i),
                (true, REPLACE, Some(i)) => items[i] = Item::New(i),
                (true, REMOVE, Some(i)) => {
                    items.remove(i);
                }
                (true, INSERT, None) => {
                    key.push(b'"');
                    escape_utf8(&mut key, name.as_bytes());
                    key.push(b'"');
                    let at = members
                        .iter()
                        .position(|(k, _)| {
                            key_text(doc, *k).is_some_and(|k| mysql_key_order(&k, name).is_gt())
                        })
                        .unwrap_or(members.len());
                    items.insert(at, Item::NewMember);
                }
                (true, INSERT, Some(_)) => return Err("inserted member already exists"),
                _ => return Err(not_found),
            }
            write_container(doc, b'{', &items, &members, &key, deeper, op, value, out)
        }
        (Some(b'['), Leg::Index(_) | Leg::FromLast(_)) => {
            let elements = array_elements(doc)?;
            let members: Vec<Span2> = elements.iter().map(|&v| ((0, 0), v)).collect();
            let len = elements.len();
            let index = match *leg {
                Leg::Index(n) => Some(n),
                Leg::FromLast(n) => (len > n).then(|| len - 1 - n),
                Leg::Member(_) => None,
            };
            let mut items: Vec<Item> = (0..len).map(|i| Item::Element(elements[i])).collect();
            let within = index.filter(|&i| i < len);
            match (deeper.is_empty(), op, within) {
                (false, _, Some(i)) => items[i] = Item::Edited(i),
                (true, REPLACE, Some(i)) => items[i] = Item::New(i),
                (true, REMOVE, Some(i)) => {
                    items.remove(i);
                }
                (true, INSERT, _) => {
                    let at = index.unwrap_or(0).min(len);
                    items.insert(at, Item::NewElement);
                }
                _ => return Err(not_found),
            }
            write_container(doc, b'[', &items, &members, &[], deeper, op, value, out)
        }
        _ => Err(not_found),
    }
}

/// Byte range in the document.
type Span = (usize, usize);
/// Key and value ranges of an object member (key unused for arrays).
type Span2 = (Span, Span);

/// One entry of a container being rewritten.
#[derive(Debug, Clone, Copy)]
enum Item {
    /// An untouched member or element, copied.
    Member(Span, Span),
    Element(Span),
    /// Member/element `i` with the rest of the path applied inside it.
    Edited(usize),
    /// Member/element `i` with its value replaced.
    New(usize),
    /// The inserted member (key in `key`) or element.
    NewMember,
    NewElement,
}

#[allow(clippy::too_many_arguments)]
fn write_container(
    doc: &[u8],
    open: u8,
    items: &[Item],
    members: &[Span2],
    key: &[u8],
    deeper: &[Leg],
    op: u8,
    value: &[u8],
    out: &mut Vec<u8>,
) -> Res<()> {
    let object = open == b'{';
    out.push(open);
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        let put_key = |out: &mut Vec<u8>, k: Span| {
            if object {
                out.extend_from_slice(&doc[k.0..k.1]);
                out.push(b':');
            }
        };
        match *item {
            Item::Member(k, v) => {
                put_key(out, k);
                out.extend_from_slice(&doc[v.0..v.1]);
            }
            Item::Element(v) => out.extend_from_slice(&doc[v.0..v.1]),
            Item::Edited(i) => {
                let (k, v) = members[i];
                put_key(out, k);
                edit(&doc[v.0..v.1], deeper, op, value, out)?;
            }
            Item::New(i) => {
                put_key(out, members[i].0);
                out.extend_from_slice(value);
            }
            Item::NewMember => {
                out.extend_from_slice(key);
                out.push(b':');
                out.extend_from_slice(value);
            }
            Item::NewElement => out.extend_from_slice(value),
        }
    }
    out.push(if object { b'}' } else { b']' });
    Ok(())
}

/// MySQL's binary JSON key order: shorter first, then by bytes.
fn mysql_key_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

fn key_text(doc: &[u8], (s, e): Span) -> Option<String> {
    serde_json::from_slice(&doc[s..e]).ok()
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

/// End (exclusive) of the string starting at `b[i] == '"'`.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
    None
}

/// End (exclusive) of the JSON value starting at `b[i]`.
fn value_end(b: &[u8], i: usize) -> Res<usize> {
    let bad = "before image is not valid JSON text";
    match b.get(i) {
        Some(b'"') => string_end(b, i).ok_or(bad),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = string_end(b, j).ok_or(bad)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            Err(bad)
        }
        Some(_) => Ok(b[i..]
            .iter()
            .position(|c| matches!(c, b',' | b'}' | b']') || c.is_ascii_whitespace())
            .map_or(b.len(), |n| i + n)),
        None => Err(bad),
    }
}

/// Key and value ranges of the members of the object `doc`.
fn object_members(doc: &[u8]) -> Res<Vec<Span2>> {
    let bad = "before image is not valid JSON text";
    let mut out = Vec::new();
    let mut i = skip_ws(doc, 1);
    if doc.get(i) == Some(&b'}') {
        return Ok(out);
    }
    loop {
        if doc.get(i) != Some(&b'"') {
            return Err(bad);
        }
        let k_end = string_end(doc, i).ok_or(bad)?;
        let colon = skip_ws(doc, k_end);
        if doc.get(colon) != Some(&b':') {
            return Err(bad);
        }
        let v = skip_ws(doc, colon + 1);
        let v_end = value_end(doc, v)?;
        out.push(((i, k_end), (v, v_end)));
        i = skip_ws(doc, v_end);
        match doc.get(i) {
            Some(b',') => i = skip_ws(doc, i + 1),
            Some(b'}') => return Ok(out),
            _ => return Err(bad),
        }
    }
}

/// Value ranges of the elements of the array `doc`.
fn array_elements(doc: &[u8]) -> Res<Vec<Span>> {
    let bad = "before image is not valid JSON text";
    let mut out = Vec::new();
    let mut i = skip_ws(doc, 1);
    if doc.get(i) == Some(&b']') {
        return Ok(out);
    }
    loop {
        let end = value_end(doc, i)?;
        out.push((i, end));
        i = skip_ws(doc, end);
        match doc.get(i) {
            Some(b',') => i = skip_ws(doc, i + 1),
            Some(b']') => return Ok(out),
            _ => return Err(bad),
        }
    }
}

/// Tested on bytes built to MySQL's documented format: no MySQL server can
/// be installed where these tests run.
#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::decode::jsonb::tests::{encode, J};
    use crate::decode::table::testing::packed;

    fn col() -> Column {
        Column::new(1, types::JSON, 4)
    }

    /// A partial value: 4-byte length, then the diffs (also used by the
    /// rows-event tests).
    pub(crate) fn diffs(list: &[(u8, &str, Option<J>)]) -> Vec<u8> {
        let mut d = Vec::new();
        for (op, path, value) in list {
            d.push(*op);
            d.extend(packed(path.len() as u64));
            d.extend_from_slice(path.as_bytes());
            if let Some(v) = value {
                let v = encode(v);
                d.extend(packed(v.len() as u64));
                d.extend(v);
            }
        }
        let mut out = (d.len() as u32).to_le_bytes().to_vec();
        out.extend(d);
        out
    }

    fn patch(before: &str, list: &[(u8, &str, Option<J>)]) -> Result<String, DecodeError> {
        let bytes = diffs(list);
        let mut c = Cursor::new(&bytes);
        let d = read_diffs(&mut c, &col())?;
        assert!(c.is_empty());
        let mut out = Vec::new();
        write_patched(&mut out, &col(), Some(before.as_bytes()), &d)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn replace_insert_remove() {
        let doc = r#"{"a":1,"b":[1,2,3],"name":"x"}"#;
        assert_eq!(
            patch(doc, &[(REPLACE, "$.a", Some(J::S("one")))]).unwrap(),
            r#"{"a":"one","b":[1,2,3],"name":"x"}"#
        );
        // inserted where MySQL stores it: keys by length, then bytes
        assert_eq!(
            patch(doc, &[(INSERT, "$.c", Some(J::I(3)))]).unwrap(),
            r#"{"a":1,"b":[1,2,3],"c":3,"name":"x"}"#
        );
        assert_eq!(
            patch(doc, &[(INSERT, "$.zz", Some(J::Null))]).unwrap(),
            r#"{"a":1,"b":[1,2,3],"zz":null,"name":"x"}"#
        );
        assert_eq!(
            patch(doc, &[(REMOVE, "$.b", None)]).unwrap(),
            r#"{"a":1,"name":"x"}"#
        );
        // several diffs in order, the last member removed
        assert_eq!(
            patch(
                doc,
                &[
                    (REMOVE, "$.name", None),
                    (REMOVE, "$.a", None),
                    (REMOVE, "$.b", None)
                ]
            )
            .unwrap(),
            "{}"
        );
        // no diffs: the before value unchanged
        assert_eq!(patch(doc, &[]).unwrap(), doc);
    }

    #[test]
    fn nested_paths_array_indexes_and_quoted_members() {
        let doc = r#"{"a":{"b":[10,{"c":true},30]},"k y":"v"}"#;
        assert_eq!(
            patch(doc, &[(REPLACE, "$.a.b[1].c", Some(J::Bool(false)))]).unwrap(),
            r#"{"a":{"b":[10,{"c":false},30]},"k y":"v"}"#
        );
        assert_eq!(
            patch(doc, &[(REPLACE, r#"$."k y""#, Some(J::I(-1)))]).unwrap(),
            r#"{"a":{"b":[10,{"c":true},30]},"k y":-1}"#
        );
        assert_eq!(
            patch(doc, &[(INSERT, "$.a.b[0]", Some(J::I(5)))]).unwrap(),
            r#"{"a":{"b":[5,10,{"c":true},30]},"k y":"v"}"#
        );
        // past the end appends, as MySQL's array insert does
        assert_eq!(
            patch(doc, &[(INSERT, "$.a.b[9]", Some(J::A(vec![])))]).unwrap(),
            r#"{"a":{"b":[10,{"c":true},30,[]]},"k y":"v"}"#
        );
        assert_eq!(
            patch(doc, &[(REMOVE, "$.a.b[last]", None)]).unwrap(),
            r#"{"a":{"b":[10,{"c":true}]},"k y":"v"}"#
        );
        assert_eq!(
            patch(doc, &[(REPLACE, "$.a.b[last-2]", Some(J::I(0)))]).unwrap(),
            r#"{"a":{"b":[0,{"c":true},30]},"k y":"v"}"#
        );
        assert_eq!(
            patch("[[1],[2]]", &[(REPLACE, "$[1][0]", Some(J::S("é\"")))]).unwrap(),
            r#"[[1],["é\""]]"#
        );
        assert_eq!(
            parse_path(b"$ . a [ 3 ] .\"x.y\"").unwrap(),
            [
                Leg::Member("a".into()),
                Leg::Index(3),
                Leg::Member("x.y".into())
            ]
        );
    }

    #[test]
    fn paths_that_do_not_apply_are_errors() {
        let doc = r#"{"a":[1,2],"s":"x"}"#;
        for (op, path) in [
            (REPLACE, "$.missing"),
            (REPLACE, "$.a[2]"),
            (REMOVE, "$.a[5]"),
            (REMOVE, "$.missing"),
            (INSERT, "$.a"), // the member exists
            (INSERT, "$.missing.x"),
            (REPLACE, "$.s.x"), // into a scalar
            (REPLACE, "$[0]"),  // an index on an object
            (REPLACE, "$.a.x"), // a member on an array
        ] {
            let value = (op != REMOVE).then_some(J::I(1));
            let e = patch(doc, &[(op, path, value)]).unwrap_err();
            assert!(
                matches!(&e, DecodeError::PartialJson { column, .. } if column == "@2"),
                "{path}: {e:?}"
            );
        }
    }

    #[test]
    fn malformed_diffs_are_errors() {
        let good = diffs(&[(REPLACE, "$.a", Some(J::I(1)))]);
        let mut cases: Vec<Vec<u8>> = vec![
            diffs(&[(3, "$.a", Some(J::I(1)))]),       // unknown operation
            diffs(&[(REPLACE, "a", Some(J::I(1)))]),   // no $
            diffs(&[(REPLACE, "$", Some(J::I(1)))]),   // the whole document
            diffs(&[(REPLACE, "$.*", Some(J::I(1)))]), // wildcard
            diffs(&[(REPLACE, "$[x]", Some(J::I(1)))]),
            diffs(&[(REPLACE, "$[1", Some(J::I(1)))]),
            diffs(&[(REPLACE, "$.\"a", Some(J::I(1)))]),
        ];
        // a diff cut inside its value (the length prefix says so)
        let mut cut = good[4..good.len() - 1].to_vec();
        let mut short = (cut.len() as u32).to_le_bytes().to_vec();
        short.append(&mut cut);
        cases.push(short);
        for bytes in &cases {
            let mut c = Cursor::new(bytes);
            let e = read_diffs(&mut c, &col()).unwrap_err();
            assert!(
                matches!(e, DecodeError::PartialJson { .. }),
                "{bytes:?}: {e:?}"
            );
            assert!(e.to_string().contains("`@2`"), "{e}");
        }
        // the 4-byte length says more than there is
        let mut c = Cursor::new(&good[..good.len() - 1]);
        assert!(matches!(
            read_diffs(&mut c, &col()),
            Err(DecodeError::Truncated { .. })
        ));
        // a value that is not binary JSON
        let mut bad_value = good.clone();
        let n = bad_value.len();
        bad_value[n - 9] = 0x7f; // type byte of the value (INT64, 8 bytes)
        let mut c = Cursor::new(&bad_value);
        let d = read_diffs(&mut c, &col()).unwrap();
        let e = write_patched(&mut Vec::new(), &col(), Some(b"{\"a\":0}"), &d).unwrap_err();
        assert!(matches!(e, DecodeError::PartialJson { .. }), "{e:?}");
        // no before value
        let mut c = Cursor::new(&good);
        let d = read_diffs(&mut c, &col()).unwrap();
        assert!(write_patched(&mut Vec::new(), &col(), None, &d).is_err());
    }
}
