//! The Ion text of DynamoDB's exports and imports: one `$ion_1_0 {Item:{...}}` line per record.
//!
//! The mapping is the Developer Guide's: S is an Ion string, N a decimal, B a blob, BOOL a bool,
//! NULL a null, SS/NS/BS lists annotated `$dynamodb_SS`/`$dynamodb_NS`/`$dynamodb_BS`, L a list
//! and M a struct. Lines are written here in the compact form AWS writes (ion-rs's compact writer
//! leaves trailing commas and spaces) and read with ion-rs, which knows all of Ion's text syntax.

use ion_rs::{Element, Sequence, Struct, Value as IonValue};
use serde_json::{Map, Value, json};

use crate::Item;
use crate::value::{Number, decode_binary, encode_binary, typed};

/// The Ion version marker each line starts with.
const VERSION_MARKER: &str = "$ion_1_0";
/// The deepest bracket nesting handed to ion-rs, whose parser recurses (a few hundred levels
/// overflow a thread's stack); DynamoDB's 32 levels and a record's two fit.
const MAX_NESTING: usize = 40;

const SETS: [(&str, &str); 3] = [("SS", "$dynamodb_SS"), ("NS", "$dynamodb_NS"), ("BS", "$dynamodb_BS")];

/// Appends one record line (without its newline): a struct whose members are attribute maps, as
/// `[("Item", item)]` or an incremental export's `Metadata`, `Keys`, `NewImage`, `OldImage`.
pub(crate) fn write_record(out: &mut String, members: &[(&str, &Item)]) -> Result<(), String> {
    out.push_str(VERSION_MARKER);
    out.push_str(" {");
    for (i, (name, item)) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_symbol(out, name);
        out.push(':');
        write_struct(out, item)?;
    }
    out.push('}');
    Ok(())
}

fn write_struct(out: &mut String, members: &Map<String, Value>) -> Result<(), String> {
    out.push('{');
    for (i, (name, value)) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_symbol(out, name);
        out.push(':');
        write_value(out, value)?;
    }
    out.push('}');
    Ok(())
}

fn write_value(out: &mut String, value: &Value) -> Result<(), String> {
    let (tag, inner) = typed(value)?;
    let text = |v: &Value| v.as_str().map(str::to_owned).ok_or_else(|| format!("a {tag} value is not a string"));
    let elements = || inner.as_array().ok_or_else(|| format!("a {tag} value is not an array"));
    match tag {
        "S" => write_string(out, inner.as_str().ok_or("an S value is not a string")?, '"'),
        "N" => out.push_str(&Number::parse(&text(inner)?)?.to_ion().to_string()),
        "B" => write_blob(out, &text(inner)?)?,
        "BOOL" => out.push_str(if inner.as_bool().ok_or("a BOOL value is not a boolean")? { "true" } else { "false" }),
        "NULL" => out.push_str("null"),
        "L" => {
            out.push('[');
            for (i, element) in elements()?.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, element)?;
            }
            out.push(']');
        }
        "M" => write_struct(out, inner.as_object().ok_or("an M value is not an object")?)?,
        _ => {
            let (_, annotation) =
                SETS.iter().find(|(set, _)| *set == tag).ok_or_else(|| format!("unknown type {tag:?}"))?;
            out.push_str(annotation);
            out.push_str("::[");
            for (i, element) in elements()?.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let element = text(element)?;
                match tag {
                    "SS" => write_string(out, &element, '"'),
                    "NS" => out.push_str(&Number::parse(&element)?.to_ion().to_string()),
                    _ => write_blob(out, &element)?,
                }
            }
            out.push(']');
        }
    }
    Ok(())
}

fn write_blob(out: &mut String, base64: &str) -> Result<(), String> {
    // Decoded and encoded again: what went in as base64 may be padded or not, Ion wants it padded.
    out.push_str("{{");
    out.push_str(&encode_binary(&decode_binary(base64)?));
    out.push_str("}}");
    Ok(())
}

/// A field name: bare when it is a plain identifier, as AWS writes `Item` or `Authors`, quoted
/// otherwise (keywords, `$`-names that could read as symbol ids or version markers, anything else).
fn write_symbol(out: &mut String, name: &str) {
    let mut chars = name.chars();
    let identifier = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !matches!(name, "null" | "true" | "false" | "nan");
    if identifier { out.push_str(name) } else { write_string(out, name, '\'') }
}

/// Text between `quote`s with Ion's escapes for the quote, the backslash and control characters.
fn write_string(out: &mut String, text: &str, quote: char) {
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c < ' ' || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// Reads one record line: a struct (after an optional version marker) whose members are attribute
/// maps, given back as DynamoDB JSON (`{"Item": {...}}`).
pub(crate) fn read_record(line: &[u8]) -> Result<Map<String, Value>, String> {
    if nesting(line) > MAX_NESTING {
        return Err(format!("nested deeper than {MAX_NESTING} levels"));
    }
    let values = Element::read_all(line).map_err(|e| {
        let message = e.to_string();
        format!("bad Ion: {}", message.lines().next().unwrap_or_default())
    })?;
    let mut values = values.iter();
    let (Some(record), None) = (values.next(), values.next()) else {
        return Err("an Ion line must hold exactly one value".into());
    };
    let record = record.as_struct().ok_or("an Ion line must hold a struct")?;
    fields(record, |member| {
        let members = member.as_struct().ok_or("a record member is not a struct")?;
        Ok(Value::Object(fields(members, attribute)?))
    })
}

/// A struct's fields, each converted, refusing repeated names (a DynamoDB map cannot hold them).
fn fields(record: &Struct, convert: impl Fn(&Element) -> Result<Value, String>) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for (name, element) in record.fields() {
        let name = name.text().ok_or("a field name has no text")?;
        if out.insert(name.to_owned(), convert(element)?).is_some() {
            return Err(format!("field {name:?} appears twice"));
        }
    }
    Ok(out)
}

/// One Ion value as a DynamoDB JSON attribute value.
fn attribute(element: &Element) -> Result<Value, String> {
    let mut annotations = element.annotations().iter();
    if let Some(annotation) = annotations.next() {
        let annotation = annotation.text().unwrap_or_default();
        if annotations.next().is_some() {
            return Err("a value has more than one annotation".into());
        }
        let (set, _) = SETS
            .iter()
            .find(|(_, known)| *known == annotation)
            .ok_or_else(|| format!("unknown annotation {annotation:?}"))?;
        let list = element.as_list().ok_or_else(|| format!("{annotation} annotates a {}", element.ion_type()))?;
        return set_of(set, list);
    }
    if element.is_null() {
        return Ok(json!({ "NULL": true }));
    }
    Ok(match element.value() {
        IonValue::String(text) => json!({ "S": text.text() }),
        IonValue::Bool(value) => json!({ "BOOL": value }),
        IonValue::Decimal(decimal) => json!({ "N": Number::from_ion(decimal)?.canonical() }),
        // Ion writers that are not DynamoDB's may write whole numbers as ints.
        IonValue::Int(int) => json!({ "N": Number::parse(&int.to_string())?.canonical() }),
        IonValue::Blob(bytes) => json!({ "B": encode_binary(bytes.as_ref()) }),
        IonValue::List(elements) => json!({ "L": elements.iter().map(attribute).collect::<Result<Vec<_>, _>>()? }),
        IonValue::Struct(members) => json!({ "M": fields(members, attribute)? }),
        _ => return Err(format!("an Ion {} has no DynamoDB type", element.ion_type())),
    })
}

fn set_of(set: &str, list: &Sequence) -> Result<Value, String> {
    let elements = list
        .iter()
        .map(|element| match (set, element.value()) {
            (_, _) if element.is_null() => Err(format!("{set} holds a null")),
            ("SS", IonValue::String(text)) => Ok(text.text().to_owned()),
            ("NS", IonValue::Decimal(decimal)) => Number::from_ion(decimal).map(|n| n.canonical()),
            ("NS", IonValue::Int(int)) => Number::parse(&int.to_string()).map(|n| n.canonical()),
            ("BS", IonValue::Blob(bytes)) => Ok(encode_binary(bytes.as_ref())),
            _ => Err(format!("{set} holds an Ion {}", element.ion_type())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({ set: elements }))
}

/// The deepest nesting of `{`, `[` and `(` in an Ion line, not counting those inside strings,
/// quoted symbols or comments.
fn nesting(line: &[u8]) -> usize {
    let (mut depth, mut deepest, mut i) = (0usize, 0, 0);
    // Where the text that starts at `i` ends: just past `close`, skipping backslash escapes.
    let skip = |from: usize, close: &[u8]| {
        let mut j = from;
        while j < line.len() && !line[j..].starts_with(close) {
            j += if line[j] == b'\\' { 2 } else { 1 };
        }
        j + close.len()
    };
    while i < line.len() {
        let rest = &line[i..];
        i = match rest[0] {
            b'"' => skip(i + 1, b"\""),
            b'\'' if rest.starts_with(b"'''") => skip(i + 3, b"'''"),
            b'\'' => skip(i + 1, b"'"),
            b'/' if rest.starts_with(b"//") => line.len(),
            b'/' if rest.starts_with(b"/*") => skip(i + 2, b"*/"),
            b'{' | b'[' | b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
                i + 1
            }
            b'}' | b']' | b')' => {
                depth = depth.saturating_sub(1);
                i + 1
            }
            _ => i + 1,
        };
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(value: Value) -> Item {
        value.as_object().cloned().unwrap_or_default()
    }

    fn line(item: &Item) -> String {
        let mut out = String::new();
        write_record(&mut out, &[("Item", item)]).unwrap();
        out
    }

    #[test]
    fn writes_the_documented_form() {
        let book = item(json!({
            "Authors": {"SS": ["Author1", "Author2"]},
            "Id": {"N": "103"},
            "InPublication": {"BOOL": false},
            "PageCount": {"N": "600"},
            "Price": {"N": "2000"},
            "Title": {"S": "Book 103 Title"},
        }));
        assert_eq!(
            line(&book),
            r#"$ion_1_0 {Item:{Authors:$dynamodb_SS::["Author1","Author2"],Id:103.,InPublication:false,PageCount:6d2,Price:2d3,Title:"Book 103 Title"}}"#
        );
    }

    #[test]
    fn writes_every_type() {
        let all = item(json!({
            "b": {"B": "AAE="},
            "bs": {"BS": ["", "/w=="]},
            "l": {"L": [{"NULL": true}, {"N": "-1.5"}, {"M": {}}]},
            "m": {"M": {"k": {"BOOL": true}}},
            "ns": {"NS": ["1", "0.001"]},
            "s": {"S": "a\"b\\c\nd\u{1}é😀"},
            "weird name": {"S": "'"},
            "null": {"S": "x"},
            "$ion_1_0": {"S": "y"},
        }));
        assert_eq!(
            line(&all),
            concat!(
                r#"$ion_1_0 {Item:{'$ion_1_0':"y",b:{{AAE=}},bs:$dynamodb_BS::[{{}},{{/w==}}],"#,
                r#"l:[null,-1.5,{}],m:{k:true},ns:$dynamodb_NS::[1.,0.001],'null':"x","#,
                "s:\"a\\\"b\\\\c\\nd\\x01é😀\",'weird name':\"'\"}}"
            )
        );
    }

    #[test]
    fn reads_back_what_it_writes() {
        let all = item(json!({
            "b": {"B": "AAE="},
            "bs": {"BS": ["", "/w=="]},
            "e": {"S": ""},
            "l": {"L": [{"NULL": true}, {"N": "-1.5"}, {"M": {}}, {"S": ""}, {"L": []}]},
            "m": {"M": {"k": {"BOOL": true}, "": {"SS": [""]}}},
            "ns": {"NS": ["1", "0.001", "-12345678901234567890123456789012345678"]},
            "s": {"S": "a\"b\\c\nd\u{1}\u{7f}é😀'"},
            "quote'd name": {"S": "x"},
        }));
        let record = read_record(line(&all).as_bytes()).unwrap();
        assert_eq!(record, Map::from_iter([("Item".to_owned(), Value::Object(all))]));
    }

    #[test]
    fn reads_ion_written_by_others() {
        let text = r#"{Item: {a: 12, b: 1.50, c: null.string, d: {{ aGk= }}, 'e': "x" /* c */, f: $dynamodb_NS::[1, 2d1]}} // end"#;
        let record = read_record(format!("{text}\n").as_bytes()).unwrap();
        assert_eq!(
            record["Item"],
            json!({"a": {"N": "12"}, "b": {"N": "1.5"}, "c": {"NULL": true}, "d": {"B": "aGk="}, "e": {"S": "x"}, "f": {"NS": ["1", "20"]}})
        );
    }

    #[test]
    fn refuses_what_dynamodb_cannot_hold() {
        for (text, reason) in [
            ("{Item:{a:1.5e0}}", "float has no DynamoDB type"),
            ("{Item:{a:2020-01-01T}}", "timestamp has no DynamoDB type"),
            ("{Item:{a:sym}}", "symbol has no DynamoDB type"),
            ("{Item:{a:{{\"clob\"}}}}", "clob has no DynamoDB type"),
            ("{Item:{a:$other::[1]}}", "unknown annotation"),
            ("{Item:{a:$dynamodb_SS::[1]}}", "SS holds an Ion int"),
            ("{Item:{a:$dynamodb_SS::\"x\"}}", "annotates a string"),
            ("{Item:{a:1,a:2}}", "appears twice"),
            ("{Item:{a:1d200}}", "larger than"),
            ("{Item:5}", "not a struct"),
            ("[1]", "must hold a struct"),
            ("{Item:{}} {Item:{}}", "exactly one value"),
            ("{Item:{a:", "bad Ion"),
        ] {
            let error = read_record(text.as_bytes()).unwrap_err();
            assert!(error.contains(reason), "{text}: {error}");
        }
        let deep = format!("{{Item:{{a:{}1{}}}}}", "[".repeat(1000), "]".repeat(1000));
        assert!(read_record(deep.as_bytes()).unwrap_err().contains("nested deeper"));
    }

    #[test]
    fn nesting_skips_text() {
        assert_eq!(nesting(br#"{a:"[[[",b:'{{',c:'''(((''',d:[1] /* [[[ */} // {{{"#), 2);
        assert_eq!(nesting(br#"{a:"\"[["}"#), 1);
        assert_eq!(nesting(b"{{AAE=}}"), 2);
    }
}
