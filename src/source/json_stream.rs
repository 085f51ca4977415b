//! Reads a large JSON `List` (what `kubectl get pods -A -o json` prints) without holding it in
//! memory: the bytes are scanned as they are read, each element of the top-level `items` array is
//! cut out and handed over on its own, and only the rest of the document (with `"items":[]`) is
//! kept. 100,000 pods are 250 MB of such JSON; reading them whole would put the text alone above
//! the memory budget.
//!
//! This only finds where items begin and end (strings, escapes and nesting); serde_json parses
//! every byte. Anything unexpected (the top level is not one object, unbalanced brackets) is a
//! [`SplitError`], on which the caller reads the file the ordinary way, which reports the error
//! properly. serde_json has no way to stream the elements of an array nested in an object from a
//! reader at full speed (its reader mode is 2-3x slower than parsing a slice), hence this.

use std::io::BufRead;

use memchr::memchr2;

#[derive(Debug, thiserror::Error)]
pub enum SplitError<E> {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("not a single JSON object")]
    NotOneObject,
    #[error("unbalanced brackets")]
    Unbalanced,
    /// The item callback refused an item.
    #[error("item {index}")]
    Item { index: usize, error: E },
    /// One item, or the document without its items, is larger than [`MAX_PART`]: it would be
    /// held whole in memory.
    #[error("an object of more than {} MiB", MAX_PART >> 20)]
    TooLarge,
}

/// The largest item (or rest of the document) held in memory at once. The API server stores at
/// most 1.5 MiB per object; this leaves ample room and bounds what a hostile file costs.
pub const MAX_PART: usize = 64 << 20;

/// The bytes that open or close something, or separate: everything else outside strings is
/// skipped.
const STRUCTURAL: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    let bytes = b"\"{}[],:";
    while i < bytes.len() {
        table[bytes[i] as usize] = true;
        i += 1;
    }
    table
};

/// Where the bytes being scanned go.
#[derive(Clone, Copy, PartialEq)]
enum Sink {
    /// The document without the items' contents.
    Skeleton,
    /// The current item.
    Item,
    /// Separators and whitespace between items.
    Drop,
}

/// Scans one JSON document from `reader`. Each element of the top-level object's `items` array
/// goes to `item(index, bytes)` as soon as it is complete; the returned bytes are the document
/// with an empty `items` array.
pub fn split_list<R: BufRead, E>(
    mut reader: R,
    mut item: impl FnMut(usize, &[u8]) -> Result<(), E>,
) -> Result<Vec<u8>, SplitError<E>> {
    let mut skeleton = Vec::new();
    let mut current = Vec::new();
    let mut index = 0;
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    // The last string read at depth 1 (the key, when a `:` follows).
    let mut key = Vec::new();
    let mut capturing_key = false;
    let mut next_is_items = false;
    let mut in_items = false;
    let mut started = false;
    let mut done = false;
    let mut sink = Sink::Skeleton;

    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let len = buf.len();
        let mut run = 0; // start of the bytes not yet given to `sink`
        let mut i = 0;
        while i < len {
            if in_string {
                if escaped {
                    escaped = false;
                    i += 1;
                    continue;
                }
                // Jump to the next quote or backslash: most of a manifest is inside strings.
                let Some(off) = memchr2(b'"', b'\\', &buf[i..]) else {
                    if capturing_key {
                        key.extend_from_slice(&buf[i..]);
                    }
                    break;
                };
                if capturing_key {
                    key.extend_from_slice(&buf[i..i + off]);
                }
                i += off;
                if buf[i] == b'\\' {
                    escaped = true;
                    if capturing_key {
                        // An escaped key is never `items`; make sure it cannot match.
                        key.push(b'\\');
                    }
                } else {
                    in_string = false;
                    capturing_key = false;
                }
                i += 1;
                continue;
            }
            if started && !done && !(in_items && depth == 2) {
                // Inside the document, only structural bytes matter: skip the rest (indentation,
                // numbers, literals) in a tight loop.
                while i < len && !STRUCTURAL[buf[i] as usize] {
                    i += 1;
                }
                if i == len {
                    break;
                }
            }
            let b = buf[i];
            if b.is_ascii_whitespace() {
                i += 1;
                continue;
            }
            if done {
                return Err(SplitError::NotOneObject);
            }
            if !started {
                if b != b'{' {
                    return Err(SplitError::NotOneObject);
                }
                started = true;
            }
            if in_items && depth == 2 {
                match b {
                    b',' | b']' => {
                        if sink == Sink::Item {
                            // An item that began in this buffer is handed over from it; only
                            // one that spans buffers is gathered in `current` (a copy of every
                            // byte otherwise).
                            let whole: &[u8] = if current.is_empty() {
                                &buf[run..i]
                            } else {
                                current.extend_from_slice(&buf[run..i]);
                                &current
                            };
                            run = i;
                            if whole.len() > MAX_PART {
                                return Err(SplitError::TooLarge);
                            }
                            item(index, whole)
                                .map_err(|error| SplitError::Item { index, error })?;
                            index += 1;
                            current.clear();
                        }
                        // The separator is dropped; the closing bracket goes to the skeleton.
                        flush(&mut sink, &buf[run..i], &mut skeleton, &mut current);
                        run = i;
                        if b == b',' {
                            sink = Sink::Drop;
                        } else {
                            sink = Sink::Skeleton;
                            in_items = false;
                            depth -= 1;
                        }
                        if b == b',' {
                            run = i + 1;
                        }
                        i += 1;
                        continue;
                    }
                    _ if sink != Sink::Item => {
                        flush(&mut sink, &buf[run..i], &mut skeleton, &mut current);
                        run = i;
                        sink = Sink::Item;
                    }
                    _ => {}
                }
            }
            match b {
                b'"' => {
                    in_string = true;
                    if depth == 1 {
                        key.clear();
                        capturing_key = true;
                    }
                }
                b':' if depth == 1 => next_is_items = key == b"items",
                b'{' | b'[' => {
                    depth += 1;
                    if b == b'[' && depth == 2 && next_is_items {
                        in_items = true;
                        // The `[` itself belongs to the skeleton; items start after it.
                        flush(&mut sink, &buf[run..=i], &mut skeleton, &mut current);
                        run = i + 1;
                        sink = Sink::Drop;
                    }
                    next_is_items = false;
                }
                b'}' | b']' => {
                    depth = depth.checked_sub(1).ok_or(SplitError::Unbalanced)?;
                    if depth == 0 {
                        done = true;
                    }
                }
                b',' if depth == 1 => next_is_items = false,
                _ => {}
            }
            i += 1;
        }
        flush(&mut sink, &buf[run..len], &mut skeleton, &mut current);
        reader.consume(len);
        if skeleton.len() > MAX_PART || current.len() > MAX_PART {
            return Err(SplitError::TooLarge);
        }
    }
    if skeleton.len() > MAX_PART {
        return Err(SplitError::TooLarge);
    }
    if !done || in_string {
        return Err(if started {
            SplitError::Unbalanced
        } else {
            SplitError::NotOneObject
        });
    }
    Ok(skeleton)
}

fn flush(sink: &mut Sink, bytes: &[u8], skeleton: &mut Vec<u8>, current: &mut Vec<u8>) {
    match sink {
        Sink::Skeleton => skeleton.extend_from_slice(bytes),
        Sink::Item => current.extend_from_slice(bytes),
        Sink::Drop => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    /// Splits `text` read `chunk` bytes at a time (so every boundary case meets a buffer end).
    fn split(text: &str, chunk: usize) -> Result<(String, Vec<String>), String> {
        let mut items = Vec::new();
        let reader = BufReader::with_capacity(chunk, text.as_bytes());
        let skeleton = split_list(reader, |i, b: &[u8]| {
            assert_eq!(i, items.len());
            // An item may keep the whitespace that followed it; JSON ignores it.
            items.push(
                String::from_utf8(b.to_vec())
                    .unwrap()
                    .trim_end()
                    .to_string(),
            );
            Ok::<(), ()>(())
        })
        .map_err(|e| e.to_string())?;
        Ok((String::from_utf8(skeleton).unwrap(), items))
    }

    #[test]
    fn items_are_cut_out_exactly_whatever_the_buffer_size() {
        let text = r#" {"apiVersion": "v1", "items": [ {"a": "x,]}\"", "b": [1, {"c": "]"}]} ,
            null, "s\\", 12 , {"items": [3]} ], "kind": "List", "metadata": {"items": [9]}}  "#;
        for chunk in [1, 2, 3, 7, 64, 4096] {
            let (skeleton, items) = split(text, chunk).unwrap();
            assert_eq!(
                items,
                [
                    r#"{"a": "x,]}\"", "b": [1, {"c": "]"}]}"#,
                    "null",
                    r#""s\\""#,
                    "12",
                    r#"{"items": [3]}"#
                ],
                "chunk {chunk}"
            );
            let v: serde_json::Value = serde_json::from_str(&skeleton).unwrap();
            assert_eq!(
                v,
                serde_json::json!({"apiVersion": "v1", "items": [], "kind": "List", "metadata": {"items": [9]}}),
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn every_item_of_a_generated_list_round_trips() {
        let list = serde_json::json!({"kind": "List", "apiVersion": "v1", "items": (0..50)
            .map(|i| serde_json::json!({"n": i, "s": format!("q\"{i}\\,]"), "l": [[], {}, [i]]}))
            .collect::<Vec<_>>()});
        for text in [
            list.to_string(),
            serde_json::to_string_pretty(&list).unwrap(),
        ] {
            for chunk in [5, 333, 8192] {
                let (_, items) = split(&text, chunk).unwrap();
                let parsed: Vec<serde_json::Value> = items
                    .iter()
                    .map(|i| serde_json::from_str(i).unwrap())
                    .collect();
                assert_eq!(parsed, list["items"].as_array().unwrap().clone());
            }
        }
    }

    #[test]
    fn an_empty_list_and_an_object_without_items() {
        assert_eq!(split(r#"{"items":[]}"#, 4).unwrap().1.len(), 0);
        let (skeleton, items) = split(r#"{"kind":"Pod","spec":{"items":[1]}}"#, 4).unwrap();
        assert!(items.is_empty());
        assert_eq!(skeleton, r#"{"kind":"Pod","spec":{"items":[1]}}"#);
    }

    #[test]
    fn what_is_not_one_object_is_refused() {
        for bad in ["", "[1]", "{} {}", r#"{"a": [}"#, r#"{"a": "x}"#, "{", "}"] {
            assert!(split(bad, 3).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_huge_item_or_document_is_refused_not_held() {
        let big = format!(r#"{{"items":[{{"a":"{}"}}]}}"#, "x".repeat(MAX_PART + 10));
        let r = split_list(BufReader::new(big.as_bytes()), |_, _| Ok::<(), ()>(()));
        assert!(
            matches!(r, Err(SplitError::TooLarge)),
            "{:?}",
            r.map(|s| s.len())
        );
        let big = format!(r#"{{"kind":"Pod","a":"{}"}}"#, "x".repeat(MAX_PART + 10));
        let r = split_list(BufReader::new(big.as_bytes()), |_, _| Ok::<(), ()>(()));
        assert!(matches!(r, Err(SplitError::TooLarge)));
    }

    #[test]
    fn an_item_refused_by_the_callback_stops_the_scan() {
        let reader = BufReader::new(r#"{"items":[1,2,3]}"#.as_bytes());
        let e = split_list(reader, |i, _| if i == 1 { Err("no") } else { Ok(()) }).unwrap_err();
        assert!(matches!(
            e,
            SplitError::Item {
                index: 1,
                error: "no"
            }
        ));
    }
}
