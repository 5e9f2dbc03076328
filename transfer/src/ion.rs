//! The Ion text of DynamoDB's exports: one `$ion_1_0 {Item:{...}}` line per record.
//!
//! The mapping is the Developer Guide's: S is an Ion string, N a decimal, B a blob, BOOL a bool,
//! NULL a null, SS/NS/BS lists annotated `$dynamodb_SS`/`$dynamodb_NS`/`$dynamodb_BS`, L a list
//! and M a struct. Lines are written here in the compact form AWS writes (ion-rs's compact writer
//! leaves trailing commas and spaces).

use serde_json::{Map, Value};

use crate::Item;
use crate::value::{Number, decode_binary, encode_binary, typed};

/// The Ion version marker each line starts with.
const VERSION_MARKER: &str = "$ion_1_0";

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}
