//! The recovery phrase: the 32-byte account secret written as 24 words of
//! the BIP39 English list (256 bits of entropy plus an 8-bit checksum).
//! Whoever holds the phrase holds the account; it is shown once at sign-up.

use bip39::{Language, Mnemonic};

use crate::keys::AccountSecret;

pub const WORDS: usize = 24;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecoveryError {
    #[error("A recovery phrase has 24 words; this one has {0}.")]
    WrongWordCount(usize),
    #[error("Word {position} (\"{word}\") is not in the recovery word list. Check its spelling.")]
    UnknownWord { position: usize, word: String },
    #[error("These words are all valid but are not a recovery phrase: one of them is probably wrong or out of order.")]
    BadChecksum,
}

/// The 24 words for `secret`, lower case, separated by single spaces.
pub fn phrase_for(secret: &AccountSecret) -> String {
    Mnemonic::from_entropy_in(Language::English, secret.as_bytes())
        .expect("32 bytes is valid BIP39 entropy")
        .to_string()
}

/// The words of [`phrase_for`] as a list, for display in a numbered grid.
pub fn words_for(secret: &AccountSecret) -> Vec<String> {
    phrase_for(secret).split(' ').map(str::to_owned).collect()
}

/// Reads a phrase back into the secret. Tolerates case, extra spaces and
/// line breaks; refuses anything else with an error that says which word.
pub fn secret_from_phrase(phrase: &str) -> Result<AccountSecret, RecoveryError> {
    let normalized = phrase.split_whitespace().map(str::to_ascii_lowercase).collect::<Vec<_>>();
    if normalized.len() != WORDS {
        return Err(RecoveryError::WrongWordCount(normalized.len()));
    }
    let word_list = Language::English;
    for (i, word) in normalized.iter().enumerate() {
        if word_list.find_word(word).is_none() {
            return Err(RecoveryError::UnknownWord { position: i + 1, word: word.clone() });
        }
    }
    let mnemonic = Mnemonic::parse_in_normalized(word_list, &normalized.join(" ")).map_err(|e| match e {
        bip39::Error::UnknownWord(i) => RecoveryError::UnknownWord { position: i + 1, word: normalized[i].clone() },
        bip39::Error::BadWordCount(n) => RecoveryError::WrongWordCount(n),
        _ => RecoveryError::BadChecksum,
    })?;
    let (entropy, len) = mnemonic.to_entropy_array();
    let bytes: [u8; 32] = entropy[..len].try_into().map_err(|_| RecoveryError::WrongWordCount(normalized.len()))?;
    Ok(AccountSecret::from_bytes(bytes))
}

/// True when `answer` is the word at 1-based `position` of `secret`'s phrase
/// (used to confirm the user wrote the phrase down).
pub fn check_word(secret: &AccountSecret, position: usize, answer: &str) -> bool {
    words_for(secret).get(position.wrapping_sub(1)).is_some_and(|w| w.eq_ignore_ascii_case(answer.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // BIP39 reference vectors (trezor/python-mnemonic vectors.json, English,
    // 256-bit entropy): the phrase is the entropy, so these fix our format.
    const VECTORS: [(&str, &str); 3] = [
        (
            "0000000000000000000000000000000000000000000000000000000000000000",
            "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon art",
        ),
        (
            "7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f",
            "legal winner thank year wave sausage worth useful legal winner thank year wave sausage worth useful legal winner thank year wave sausage worth title",
        ),
        (
            "8080808080808080808080808080808080808080808080808080808080808080",
            "letter advice cage absurd amount doctor acoustic avoid letter advice cage absurd amount doctor acoustic avoid letter advice cage absurd amount doctor acoustic bless",
        ),
    ];

    #[test]
    fn known_answer_vectors() {
        for (entropy, phrase) in VECTORS {
            let secret = AccountSecret::from_bytes(hex::decode(entropy).unwrap().try_into().unwrap());
            assert_eq!(phrase_for(&secret), phrase);
            assert_eq!(secret_from_phrase(phrase).unwrap(), secret);
        }
    }

    #[test]
    fn tolerant_of_case_and_spacing() {
        let (entropy, phrase) = VECTORS[1];
        let messy = format!("  {}\n", phrase.to_uppercase().replace(' ', "   "));
        assert_eq!(secret_from_phrase(&messy).unwrap().as_bytes().to_vec(), hex::decode(entropy).unwrap());
    }

    #[test]
    fn errors_name_the_problem() {
        let (_, phrase) = VECTORS[1];
        let short = phrase.split(' ').take(23).collect::<Vec<_>>().join(" ");
        assert_eq!(secret_from_phrase(&short).unwrap_err(), RecoveryError::WrongWordCount(23));

        let typo = phrase.replacen("winner", "winnre", 1);
        let err = secret_from_phrase(&typo).unwrap_err();
        assert_eq!(err, RecoveryError::UnknownWord { position: 2, word: "winnre".into() });
        assert_eq!(err.to_string(), "Word 2 (\"winnre\") is not in the recovery word list. Check its spelling.");

        // Two valid words swapped: checksum catches it.
        let mut words: Vec<&str> = phrase.split(' ').collect();
        words.swap(0, 1);
        assert_eq!(secret_from_phrase(&words.join(" ")).unwrap_err(), RecoveryError::BadChecksum);
    }

    #[test]
    fn confirmation_words() {
        let secret = AccountSecret::from_bytes([0x7f; 32]);
        assert!(check_word(&secret, 1, "legal"));
        assert!(check_word(&secret, 24, " Title "));
        assert!(!check_word(&secret, 24, "legal"));
        assert!(!check_word(&secret, 0, "legal"));
        assert!(!check_word(&secret, 25, "legal"));
    }
}
