//! Tags: DynamoDB's rules on them, shared by CreateTable and TagResource.

use super::Tag;
use crate::error::{ApiError, ApiResult};
use crate::input::{Input, Violations, as_object};

pub const MAX_TAG_KEY_CHARS: usize = 128;
const MAX_TAG_VALUE_CHARS: usize = 256;
const TAG_PATTERN: &str = r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$";

/// The `Tags` member (TagResource, CreateTable).
pub fn read_tags(input: Input<'_>) -> ApiResult<Option<Vec<Tag>>> {
    let Some(list) = input.list("Tags")? else { return Ok(None) };
    list.iter()
        .map(|element| {
            let tag = Input::new(as_object(element)?);
            Ok(Tag {
                key: tag.string("Key")?.unwrap_or_default().to_string(),
                value: tag.string("Value")?.unwrap_or_default().to_string(),
            })
        })
        .collect::<ApiResult<_>>()
        .map(Some)
}

/// DynamoDB's constraints on each tag: key 1 to 128 characters, value up to 256, both of
/// letters, digits, spaces and `_.:/=+-@`; no key of AWS's own `aws:` prefix.
pub fn check_tags(violations: &mut Violations, tags: &[Tag]) {
    for (i, tag) in tags.iter().enumerate() {
        let path = format!("tags.{}.member", i + 1);
        violations.length(&tag.key, &format!("{path}.key"), 1, MAX_TAG_KEY_CHARS);
        violations.length(&tag.value, &format!("{path}.value"), 0, MAX_TAG_VALUE_CHARS);
        for (text, member) in [(&tag.key, "key"), (&tag.value, "value")] {
            if !text.chars().all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c)) {
                violations.add(
                    Some(text),
                    &format!("{path}.{member}"),
                    &format!("satisfy regular expression pattern: {TAG_PATTERN}"),
                );
            }
        }
    }
}

/// Refuses tag keys AWS keeps for itself; run once the request is otherwise valid.
pub fn check_reserved(tags: &[Tag]) -> ApiResult<()> {
    match tags.iter().find(|tag| tag.key.starts_with("aws:")) {
        Some(tag) => Err(ApiError::validation(format!(
            "One or more parameter values were invalid: Tag keys starting with 'aws:' are reserved for AWS use: {}",
            tag.key
        ))),
        None => Ok(()),
    }
}
