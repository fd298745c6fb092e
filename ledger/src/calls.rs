//! The contract function each signed message is submitted to, and its
//! arguments: the message's fields then the signature. One place for what
//! the relayer, the tests and the benchmark all send.

use chartkey_core::eip712::{
    Access, Anchor, AnchorBatch, Domain, EmergencyAccess, EmergencyContact, EmergencyContactRemove, EmergencyRefusal,
    EmergencyRequest, Grant, IssueCredential, Link, LinkRevoke, LinkUpdate, Register, Revoke, RevokeCredential,
    TypedMessage,
};
use ethers_core::abi::Token;

use crate::artifacts::encode_call;
use crate::artifacts::{self, Artifact};
use crate::node::Contracts;

/// Which of Chartkey's contracts a call goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Directory,
    Records,
    Access,
}

impl Target {
    pub fn artifact(self) -> &'static Artifact {
        match self {
            Self::Directory => artifacts::directory(),
            Self::Records => artifacts::records(),
            Self::Access => artifacts::access(),
        }
    }

    pub fn address(self, contracts: &Contracts) -> alloy_primitives::Address {
        match self {
            Self::Directory => contracts.directory,
            Self::Records => contracts.records,
            Self::Access => contracts.access,
        }
    }

    /// The contract's `bundle(bytes[])` carrying `calls` (each an input to
    /// this contract): several relayed requests in one transaction, each run
    /// as if alone.
    pub fn bundle<'a>(self, calls: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
        let calls = Token::Array(calls.into_iter().map(|call| Token::Bytes(call.to_vec())).collect());
        encode_call(&self.artifact().abi, "bundle", &[calls]).expect("bundle takes bytes[]")
    }

    /// The EIP-712 domain of messages this contract verifies.
    pub fn domain(self, chain_id: u64, contracts: &Contracts) -> Domain {
        let at = crate::convert::to_ethers(self.address(contracts));
        match self {
            Self::Directory => Domain::directory(chain_id, at),
            Self::Records => Domain::records(chain_id, at),
            Self::Access => Domain::access(chain_id, at),
        }
    }
}

/// A signed message that a contract takes as `FUNCTION(fields…, signature)`.
pub trait SignedCall: TypedMessage {
    const FUNCTION: &'static str;

    /// The contract that verifies it.
    const TARGET: Target;

    /// The account whose signature the contract checks.
    fn signer(&self) -> ethers_core::types::Address;

    fn artifact() -> &'static Artifact {
        Self::TARGET.artifact()
    }

    /// The arguments before the signature. The contracts take the EIP-712
    /// fields in their order, except where a field is hashed for signing
    /// (a grant's list of records).
    fn arguments(&self) -> Vec<Token> {
        self.fields()
    }
}

/// The arguments of the call carrying `message` and `signature`.
pub fn arguments<M: SignedCall>(message: &M, signature: Vec<u8>) -> Vec<Token> {
    let mut arguments = message.arguments();
    arguments.push(Token::Bytes(signature));
    arguments
}

/// The ABI-encoded call (transaction input) carrying `message` and `signature`.
pub fn input<M: SignedCall>(message: &M, signature: Vec<u8>) -> Vec<u8> {
    encode_call(&M::artifact().abi, M::FUNCTION, &arguments(message, signature))
        .expect("each message's fields match its function's parameters")
}

macro_rules! signed_call {
    ($message:ty, $function:literal, $target:ident, $signer:ident) => {
        impl SignedCall for $message {
            const FUNCTION: &'static str = $function;
            const TARGET: Target = Target::$target;
            fn signer(&self) -> ethers_core::types::Address {
                self.$signer
            }
        }
    };
}

signed_call!(Register, "register", Directory, account);
signed_call!(IssueCredential, "issueCredential", Directory, authority);
signed_call!(RevokeCredential, "revokeCredential", Directory, authority);
signed_call!(Anchor, "anchor", Records, author);
signed_call!(AnchorBatch, "anchorBatch", Records, author);
signed_call!(Revoke, "revoke", Records, patient);
signed_call!(Access, "logAccess", Records, grantee);
signed_call!(Link, "createLink", Access, patient);
signed_call!(LinkUpdate, "updateLink", Access, patient);
signed_call!(LinkRevoke, "revokeLink", Access, patient);
signed_call!(EmergencyContact, "setEmergencyContact", Access, patient);
signed_call!(EmergencyContactRemove, "removeEmergencyContact", Access, patient);
signed_call!(EmergencyRefusal, "refuseEmergencyAccess", Access, patient);
signed_call!(EmergencyRequest, "requestEmergencyAccess", Access, contact);
signed_call!(EmergencyAccess, "logEmergencyAccess", Access, contact);

impl SignedCall for Grant {
    const FUNCTION: &'static str = "grant";
    const TARGET: Target = Target::Records;

    fn signer(&self) -> ethers_core::types::Address {
        self.patient
    }

    fn arguments(&self) -> Vec<Token> {
        let mut fields = self.fields();
        // Signed as the hash of the list; passed as the list.
        fields[4] = Token::Array(self.records.iter().map(|r| Token::FixedBytes(r.to_vec())).collect());
        fields
    }
}

/// A record of an anchored batch brought into the patient's chart by its
/// audit path (`proveBatchRecord`), so it can be listed in a grant and its
/// accesses logged. Not signed: anyone may submit it, because the contract
/// checks the path against the root the patient's batch holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRecordProof {
    pub patient: ethers_core::types::Address,
    pub root: [u8; 32],
    pub index: u32,
    pub record: chartkey_core::records::AnchoredRecord,
    pub path: Vec<[u8; 32]>,
}

impl BatchRecordProof {
    pub const FUNCTION: &'static str = "proveBatchRecord";
    pub const TARGET: Target = Target::Records;

    pub fn arguments(&self) -> Vec<Token> {
        let r = &self.record;
        vec![
            Token::Address(self.patient),
            Token::FixedBytes(self.root.to_vec()),
            Token::Uint(self.index.into()),
            Token::FixedBytes(r.id.0.to_vec()),
            Token::FixedBytes(r.ciphertext_hash.to_vec()),
            Token::Uint(r.category.into()),
            Token::FixedBytes(r.amends.map(|a| a.0).unwrap_or([0; 32]).to_vec()),
            Token::Array(self.path.iter().map(|h| Token::FixedBytes(h.to_vec())).collect()),
        ]
    }

    /// The ABI-encoded call (transaction input).
    pub fn input(&self) -> Vec<u8> {
        encode_call(&Self::TARGET.artifact().abi, Self::FUNCTION, &self.arguments())
            .expect("a proof's fields match proveBatchRecord's parameters")
    }
}

/// A use of a live link, logged by the host before it answers a manifest
/// request (`logLinkUse`). Not signed: the recipient has no account, and
/// the event is the host's own statement; the contract refuses it for a
/// link that is unknown, revoked or expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkUse {
    pub patient: ethers_core::types::Address,
    pub link_id: [u8; 32],
    /// keccak256 of the recipient label the requester gave (never the label).
    pub recipient_hash: [u8; 32],
    /// The host's random name for this use (no two uses make the same call).
    pub use_id: [u8; 32],
}

impl LinkUse {
    pub const FUNCTION: &'static str = "logLinkUse";
    pub const TARGET: Target = Target::Access;

    pub fn arguments(&self) -> Vec<Token> {
        vec![
            Token::Address(self.patient),
            Token::FixedBytes(self.link_id.to_vec()),
            Token::FixedBytes(self.recipient_hash.to_vec()),
            Token::FixedBytes(self.use_id.to_vec()),
        ]
    }

    /// The ABI-encoded call (transaction input).
    pub fn input(&self) -> Vec<u8> {
        encode_call(&Self::TARGET.artifact().abi, Self::FUNCTION, &self.arguments())
            .expect("a link use matches logLinkUse's parameters")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each message goes as its function's call: the selector, then its
    /// fields and the signature, as the function's ABI decodes them.
    fn encodes_as_its_function<M: SignedCall>(message: &M) {
        let sig = vec![0xab; 65];
        let data = input(message, sig.clone());
        let function = M::artifact().abi.function(M::FUNCTION).unwrap();
        assert_eq!(data[..4], function.short_signature(), "{}", M::FUNCTION);
        let decoded = function.decode_input(&data[4..]).unwrap();
        assert_eq!(decoded, arguments(message, sig), "{}", M::FUNCTION);
    }

    #[test]
    fn every_message_encodes_as_its_function() {
        for message in chartkey_core::eip712::examples() {
            chartkey_core::with_ledger_message!(&message, m => encodes_as_its_function(m));
        }
        let grant = chartkey_core::eip712::examples()
            .into_iter()
            .find_map(|m| match m {
                chartkey_core::eip712::LedgerMessage::Grant(g) => Some(g),
                _ => None,
            })
            .unwrap();
        let decoded =
            artifacts::records().abi.function("grant").unwrap().decode_input(&input(&grant, vec![])[4..]).unwrap();
        assert_eq!(
            decoded[4],
            Token::Array(grant.records.iter().map(|r| Token::FixedBytes(r.to_vec())).collect()),
            "the records go as a list, not as the hash that was signed"
        );
    }
}
