//! Value encoding: the only user of bincode. Every value starts with a format version byte so a
//! later change of layout can be read side by side with the old one, in this file alone.

use serde::{Serialize, de::DeserializeOwned};

use super::StoreError;

/// The current value format.
const VERSION: u8 = 1;

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes a value as `[VERSION] ++ bincode(value)`.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![VERSION];
    bincode::serde::encode_into_std_write(value, &mut out, config())
        .map_err(|e| StoreError::Codec(e.to_string()))?;
    Ok(out)
}

/// Decodes a value written by [`encode`].
///
/// # Errors
/// [`StoreError::Codec`] for an unknown version byte, a truncated value or trailing bytes.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&VERSION, rest)) => {
            let (value, used) = bincode::serde::decode_from_slice(rest, config())
                .map_err(|e| StoreError::Codec(e.to_string()))?;
            if used != rest.len() {
                return Err(StoreError::Codec(format!(
                    "{} trailing bytes after value",
                    rest.len() - used
                )));
            }
            Ok(value)
        }
        Some((v, _)) => Err(StoreError::Codec(format!(
            "unknown value format version {v}"
        ))),
        None => Err(StoreError::Codec("empty value".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        id: u64,
        name: String,
        tags: Vec<String>,
        maybe: Option<u32>,
    }

    fn sample() -> Sample {
        Sample {
            id: 42,
            name: "Zoë".into(),
            tags: vec!["a".into(), "b".into()],
            maybe: None,
        }
    }

    #[test]
    fn round_trips_with_version_byte() {
        let bytes = encode(&sample()).unwrap();
        assert_eq!(bytes[0], VERSION);
        assert_eq!(decode::<Sample>(&bytes).unwrap(), sample());
    }

    #[test]
    fn rejects_unknown_version_empty_truncated_and_trailing() {
        let mut bytes = encode(&sample()).unwrap();
        assert!(decode::<Sample>(&[]).is_err());
        assert!(decode::<Sample>(&bytes[..bytes.len() - 1]).is_err());
        bytes.push(0);
        assert!(decode::<Sample>(&bytes).is_err());
        bytes.pop();
        bytes[0] = VERSION + 1;
        let err = decode::<Sample>(&bytes).unwrap_err().to_string();
        assert!(err.contains("version"), "{err}");
    }
}
