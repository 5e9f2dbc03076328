//! Form fields and query strings (`application/x-www-form-urlencoded`), and the links the pages
//! build from them.

use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::{Value, json};

/// A form's or a query string's fields, in order; a name may repeat (checkboxes).
#[derive(Debug, Default, Clone)]
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(text: &str) -> Form {
        Form(serde_urlencoded::from_str(text).unwrap_or_default())
    }

    pub fn parse_bytes(bytes: &[u8]) -> Form {
        Form(serde_urlencoded::from_bytes(bytes).unwrap_or_default())
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The value of `name`, trimmed; "" when absent.
    pub fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or_default().trim()
    }

    /// Every value of `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.0.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The same fields with `name` set to `value` (or removed when None).
    pub fn with(&self, name: &str, value: Option<&str>) -> Form {
        let mut fields: Vec<_> = self.0.iter().filter(|(n, _)| n != name).cloned().collect();
        if let Some(value) = value {
            fields.push((name.to_string(), value.to_string()));
        }
        Form(fields)
    }

    /// As a query string (without `?`).
    pub fn encode(&self) -> String {
        serde_urlencoded::to_string(&self.0).unwrap_or_default()
    }
}

/// A path segment as sent (percent-encoded) decoded.
pub fn percent_decode(segment: &str) -> String {
    percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

/// A name (a table's, an index's) as a path segment.
pub fn segment(name: &str) -> String {
    utf8_percent_encode(name, NON_ALPHANUMERIC).to_string()
}

/// A query string of these fields.
pub fn query(fields: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(fields).unwrap_or_default()
}

/// The console's page of a table, with a query string.
pub fn table_url(table: &str, rest: &str, query: &str) -> String {
    let path = format!("/console/tables/{}{rest}", segment(table));
    if query.is_empty() { path } else { format!("{path}?{query}") }
}

/// A value typed in a form as DynamoDB JSON of `kind` (S, N, B as base64, BOOL); DynamoDB checks
/// the text, so its own message reports a bad number or base64.
pub fn typed(kind: &str, text: &str) -> Value {
    match kind {
        "N" => json!({"N": text}),
        "B" => json!({"B": text}),
        "BOOL" => json!({"BOOL": text.eq_ignore_ascii_case("true")}),
        _ => json!({"S": text}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_keep_order_and_repeats_and_encode_back() {
        let form = Form::parse("key=%7B%22a%22%7D&key=2&name=x+y&csrf=");
        assert_eq!(form.all("key").collect::<Vec<_>>(), ["{\"a\"}", "2"]);
        assert_eq!(form.get("name"), Some("x y"));
        assert_eq!(form.text("missing"), "");
        let next = form.with("name", Some("z&w"));
        assert_eq!(Form::parse(&next.encode()).get("name"), Some("z&w"));
        assert_eq!(
            table_url("a.b-c", "/item", &query(&[("k", "{\"x\":1}")])),
            "/console/tables/a%2Eb%2Dc/item?k=%7B%22x%22%3A1%7D"
        );
        assert_eq!(percent_decode("a%2Eb%2Dc"), "a.b-c");
    }

    #[test]
    fn typed_values_are_dynamodb_json() {
        assert_eq!(
            typed("N", "12345678901234567890123456789012345678"),
            json!({"N": "12345678901234567890123456789012345678"})
        );
        assert_eq!(typed("S", "x"), json!({"S": "x"}));
        assert_eq!(typed("BOOL", "TRUE"), json!({"BOOL": true}));
        assert_eq!(typed("B", "AAE="), json!({"B": "AAE="}));
    }
}
