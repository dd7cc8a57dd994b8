//! Tags: labels on stored messages, shared by every copy of a message, as Mailpit has them.
//! They come from a message's `X-Tags` header at delivery and from the operator (set on a
//! message, renamed, deleted). Tags that differ only in letter case are one tag, spelt as it
//! was first stored.

use tracing::info;

use super::Service;
use crate::error::{Error, Result};

/// The longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 100;
/// The most tags one message may carry.
pub const MAX_TAGS: usize = 50;

/// Why a tag is not acceptable, if it is not (after trimming).
fn fault(tag: &str) -> Option<&'static str> {
    if tag.is_empty() {
        Some("a tag may not be empty")
    } else if tag.chars().count() > MAX_TAG_CHARS {
        Some("a tag may have at most 100 characters")
    } else if tag.chars().any(|c| c.is_control() || c == ',') {
        Some("a tag may not hold commas or control characters")
    } else {
        None
    }
}

/// Adds `tag` unless one differing only in letter case is already in `out`.
fn push_unique(out: &mut Vec<String>, tag: &str) {
    let key = tag.to_lowercase();
    if !out.iter().any(|t| t.to_lowercase() == key) {
        out.push(tag.to_owned());
    }
}

/// The tags of `X-Tags` header values: comma-separated, trimmed, the first of those that
/// differ only in letter case, at most [`MAX_TAGS`]; empty and unacceptable ones (too long,
/// control characters) are dropped, as a header cannot be refused.
pub fn from_header<'a>(values: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out = Vec::new();
    for tag in values.flat_map(|v| v.split(',')).map(str::trim) {
        if fault(tag).is_none() && out.len() < MAX_TAGS {
            push_unique(&mut out, tag);
        }
    }
    out
}

/// Checks a list of tags the API was given: trimmed, duplicates in any letter case merged.
///
/// # Errors
/// `invalid_tag` ([`Error::Invalid`]) for an empty or too long tag, one with a comma or a
/// control character, or more than [`MAX_TAGS`].
pub fn checked(tags: &[String]) -> Result<Vec<String>> {
    if tags.len() > MAX_TAGS {
        return Err(Error::invalid(
            "invalid_tag",
            "tags",
            "a message may carry at most 50 tags",
        ));
    }
    let mut out = Vec::new();
    for (i, tag) in tags.iter().enumerate() {
        let tag = tag.trim();
        if let Some(why) = fault(tag) {
            return Err(Error::invalid("invalid_tag", format!("tags[{i}]"), why));
        }
        push_unique(&mut out, tag);
    }
    Ok(out)
}

/// A single tag name the API was given, trimmed.
fn checked_one(tag: &str, field: &str) -> Result<String> {
    let tag = tag.trim();
    match fault(tag) {
        Some(why) => Err(Error::invalid("invalid_tag", field, why)),
        None => Ok(tag.to_owned()),
    }
}

/// A tag in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// As first stored.
    pub name: String,
    /// How many messages carry it.
    pub messages: u64,
}

/// Messages retagged per store transaction when renaming or deleting a tag.
const RETAG_TXN: usize = 64;

impl Service {
    /// Sets the tags of a message, replacing its others (none: removes them all). Returns the
    /// tags as stored: a tag already in use keeps its spelling.
    ///
    /// # Errors
    /// `invalid_tag` ([`Error::Invalid`]); [`Error::NotFound`] for an unknown message.
    pub async fn set_tags(&self, id: u64, tags: &[String]) -> Result<Vec<String>> {
        let tags = checked(tags)?;
        self.offload(move |svc| {
            svc.inner
                .store
                .set_message_tags(id, &tags)?
                .ok_or(Error::NotFound("message"))
        })
        .await
    }

    /// The tags of a message (none for an unknown one).
    pub async fn tags_of(&self, id: u64) -> Result<Vec<String>> {
        Ok(self.inner.store.message_tags(id)?)
    }

    /// Every tag in use, in alphabetical order of their lower-cased names.
    pub async fn tags(&self) -> Result<Vec<Tag>> {
        let tags = self.offload(|svc| Ok(svc.inner.store.tags()?)).await?;
        Ok(tags
            .into_iter()
            .map(|t| Tag {
                name: t.name,
                messages: t.messages,
            })
            .collect())
    }

    /// Renames a tag on every message carrying it (merging it into `to` where a message has
    /// both). Returns how many messages carried it.
    ///
    /// # Errors
    /// `invalid_tag` ([`Error::Invalid`]).
    pub async fn rename_tag(&self, from: &str, to: &str) -> Result<usize> {
        let from = checked_one(from, "tag")?;
        let to = checked_one(to, "name")?;
        let n = self
            .offload(move |svc| {
                let store = &svc.inner.store;
                let ids = store.tagged_messages(&from)?;
                let key = from.to_lowercase();
                for chunk in ids.chunks(RETAG_TXN) {
                    store.retag_messages(chunk, |tags| {
                        let mut out = Vec::with_capacity(tags.len());
                        for t in tags {
                            if t.to_lowercase() == key {
                                push_unique(&mut out, &to);
                            } else {
                                push_unique(&mut out, &t);
                            }
                        }
                        out
                    })?;
                }
                Ok(ids.len())
            })
            .await?;
        info!(messages = n, "tag renamed by the operator");
        Ok(n)
    }

    /// Removes a tag from every message carrying it. Returns how many did.
    ///
    /// # Errors
    /// `invalid_tag` ([`Error::Invalid`]).
    pub async fn delete_tag(&self, tag: &str) -> Result<usize> {
        let tag = checked_one(tag, "tag")?;
        let n = self
            .offload(move |svc| {
                let store = &svc.inner.store;
                let ids = store.tagged_messages(&tag)?;
                let key = tag.to_lowercase();
                for chunk in ids.chunks(RETAG_TXN) {
                    store.retag_messages(chunk, |mut tags| {
                        tags.retain(|t| t.to_lowercase() != key);
                        tags
                    })?;
                }
                Ok(ids.len())
            })
            .await?;
        info!(messages = n, "tag deleted by the operator");
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_tags_are_split_trimmed_and_deduplicated() {
        let tags = from_header(["  Alpha, beta ,,ALPHA", "Gamma,  ", "bad\u{7}tag"].into_iter());
        assert_eq!(tags, ["Alpha", "beta", "Gamma"]);
        let long = "x".repeat(MAX_TAG_CHARS + 1);
        assert!(from_header([long.as_str()].into_iter()).is_empty());
    }

    #[test]
    fn api_tags_are_checked() {
        let ok = checked(&[" Urgent ".into(), "urgent".into(), "Été".into()]).unwrap();
        assert_eq!(ok, ["Urgent", "Été"]);
        for bad in ["", "  ", "a,b", "a\nb"] {
            let e = checked(&["fine".into(), bad.into()]).unwrap_err();
            assert!(
                matches!(e, Error::Invalid { code: "invalid_tag", ref field, .. } if field.as_deref() == Some("tags[1]")),
                "{bad:?}: {e:?}"
            );
        }
        let many: Vec<String> = (0..=MAX_TAGS).map(|i| i.to_string()).collect();
        assert!(checked(&many).is_err());
    }
}
