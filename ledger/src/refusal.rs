//! Why a contract refused a signed message, in words a patient or clinician
//! can act on, with the contract's error name kept as a stable code.

use serde::{Deserialize, Serialize};

use crate::artifacts::{self, Artifact};

/// A contract's refusal: `code` is the Solidity error's name (stable, for
/// programs), `message` says what it means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl Refusal {
    /// Decodes revert data from `artifact`'s contract.
    pub fn decode(artifact: &Artifact, data: &[u8]) -> Self {
        if let Some(message) = artifacts::revert_message(data) {
            return Self { code: "Error".into(), message: format!("The ledger refused this: {message}.") };
        }
        let found = (data.len() >= 4)
            .then(|| artifact.abi.errors().find(|e| e.signature().as_bytes()[..4] == data[..4]))
            .flatten();
        let Some(error) = found else {
            return Self {
                code: "Unknown".into(),
                message: format!("The ledger refused this ({}).", artifact.describe_revert(data)),
            };
        };
        let args = error.decode(&data[4..]).unwrap_or_default();
        let arg = |i: usize| args.get(i).map(artifacts::revert_arg).unwrap_or_default();
        let message = match error.name.as_str() {
            "WrongSigner" => format!("The signature is not {}'s: it was made by another key.", arg(0)),
            "ECDSAInvalidSignature" | "ECDSAInvalidSignatureLength" | "ECDSAInvalidSignatureS" => {
                "The signature is malformed.".into()
            }
            "InvalidAccountNonce" => format!(
                "This request was already used, or was signed out of order (the next number for {} is {}). Please try again.",
                arg(0),
                arg(1)
            ),
            "InvalidRole" => format!("Role {} does not exist.", arg(0)),
            "RoleChange" => "An account's role cannot change after it has registered.".into(),
            "NotRegistered" if artifact.name == "ChartkeyAccess" => {
                format!("{} has no account here, so they cannot be an emergency contact.", arg(0))
            }
            "NotRegistered" => format!("{} has not registered as a credentialing authority.", arg(0)),
            "NotAuthority" => format!("{} is not a credentialing authority.", arg(0)),
            "NotClinician" => format!("{} is not registered as a clinician.", arg(0)),
            "NoCredential" => format!("{} holds no credential.", arg(0)),
            "NotIssuer" => "Only the authority that issued this credential can change it.".into(),
            "OwnableUnauthorizedAccount" => "Only the ledger's administrator can do this.".into(),
            "OwnableInvalidOwner" => "That is not a valid administrator address.".into(),
            "InvalidShortString" | "StringTooLong" => "A contract name is too long.".into(),
            "NotPatient" => "Only a registered patient can do this.".into(),
            "UnverifiedGrantee" => {
                "This clinician is not verified (no valid credential), so nothing can be shared with them.".into()
            }
            "ExpiryInPast" => "The end date has already passed.".into(),
            "ExpiryTooFar" => "Sharing can last at most a year.".into(),
            "InvalidScope" | "EmptyScope" | "ScopeMismatch" => {
                "Choose records, categories or everything to share.".into()
            }
            "WriteNeedsCategories" => {
                "Write access is given for categories or everything, not for single records.".into()
            }
            "InvalidCategory" => format!("Category {} does not exist.", arg(0)),
            "ZeroId" => "A record needs an identifier.".into(),
            "RecordExists" => "This record is already on the ledger.".into(),
            "BatchExists" => "This batch of records is already on the ledger.".into(),
            "EmptyBatch" => "A batch needs at least one record.".into(),
            "UnknownRecord" => "This record is not on the ledger.".into(),
            "NotAuthorisedAuthor" => "You may not add records to this chart.".into(),
            "NoGrant" => "Nothing has been shared with you by this patient.".into(),
            "GrantRevoked" => "The patient stopped sharing with you.".into(),
            "GrantExpired" => "The time the patient shared this for has ended.".into(),
            "CredentialInvalid" => {
                "Your credential has expired or was revoked, so shared records are closed to you.".into()
            }
            "OutOfScope" => "This record is not among those shared with you.".into(),
            "UnknownBatch" => "This batch of records is not on the ledger.".into(),
            "BadInclusionProof" => "This record's proof does not lead to its batch on the ledger.".into(),
            "BadFlags" => "A link cannot both ask for a passcode and be a direct file.".into(),
            "LinkExists" => "This link is already on the ledger.".into(),
            "UnknownLink" => "This link is not on the ledger.".into(),
            "LinkIsRevoked" => "This link was stopped.".into(),
            "LinkExpired" => "This link has expired.".into(),
            "NotHost" => "Only the server the link names may record its uses.".into(),
            "NotLongTerm" => "Only a long-term link's content can change.".into(),
            "SelfContact" => "You cannot be your own emergency contact.".into(),
            "WaitTooLong" => "The waiting period is at most 7 days.".into(),
            "NotContact" => "This person is not (or no longer) an emergency contact of this patient.".into(),
            "RequestOpen" => format!("A request is already open; access opens at {}.", arg(2)),
            "NoRequest" => "There is no open emergency request to answer.".into(),
            "StillWaiting" => format!("The waiting period has not passed; access opens at {}.", arg(2)),
            other => format!("The ledger refused this ({other})."),
        };
        Self { code: error.name.clone(), message }
    }
}

#[cfg(test)]
mod tests {
    use ethers_core::abi::{ParamType, Token};
    use ethers_core::types::Address;

    use super::*;
    use crate::artifacts::{access, directory, records};

    fn revert(artifact: &Artifact, name: &str, args: &[Token]) -> Vec<u8> {
        artifact.abi.error(name).unwrap().encode(args).unwrap()
    }

    #[test]
    fn every_custom_error_has_words() {
        for artifact in [directory(), records(), access()] {
            for error in artifact.abi.errors() {
                let args: Vec<Token> = error
                    .inputs
                    .iter()
                    .map(|p| match &p.kind {
                        ParamType::Address => Token::Address(Address::zero()),
                        ParamType::FixedBytes(n) => Token::FixedBytes(vec![0; *n]),
                        ParamType::Bool => Token::Bool(false),
                        ParamType::String => Token::String(String::new()),
                        _ => Token::Uint(0.into()),
                    })
                    .collect();
                let refusal = Refusal::decode(artifact, &error.encode(&args).unwrap());
                assert_eq!(refusal.code, error.name);
                assert!(!refusal.message.contains(&format!("({})", error.name)), "{} has no words", error.name);
            }
        }
    }

    #[test]
    fn arguments_and_unknowns() {
        let who = Address::repeat_byte(0xab);
        let r = Refusal::decode(
            records(),
            &revert(records(), "InvalidAccountNonce", &[Token::Address(who), Token::Uint(4.into())]),
        );
        assert_eq!(r.code, "InvalidAccountNonce");
        assert!(r.message.contains("is 4"), "{}", r.message);
        assert!(r.message.contains("0xabab"), "{}", r.message);
        let unknown = Refusal::decode(records(), &[1, 2, 3, 4, 5]);
        assert_eq!(unknown.code, "Unknown");
        assert!(unknown.message.contains("0x01020304"));
        assert_eq!(Refusal::decode(records(), &[]).code, "Unknown");
        let mut message = vec![0x08, 0xc3, 0x79, 0xa0];
        message.extend(ethers_core::abi::encode(&[Token::String("nope".into())]));
        assert_eq!(Refusal::decode(directory(), &message).message, "The ledger refused this: nope.");
    }
}
