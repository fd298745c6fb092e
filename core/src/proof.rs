//! Proof of holding an account's secret, for restoring access with the
//! recovery phrase: the browser signs a server challenge with the
//! account's secp256k1 key as an EIP-191 personal message, and the server
//! recovers the signer. No secret crosses the wire.

use ethers_core::types::Address;
use ethers_core::utils::hash_message;

use crate::directory::{recover_strict, sign_digest};
use crate::keys::AccountKeys;
use crate::value::{Hash32, Signature};

/// The message signed to restore an account with the recovery phrase. It
/// names what is being approved, so the signature cannot be reused for
/// anything else.
pub fn restore_message(address: &Address, challenge: &str) -> String {
    format!(
        "Chartkey: add a new passkey to my account using my recovery phrase.\nAccount: {}\nChallenge: {challenge}",
        ethers_core::utils::to_checksum(address, None)
    )
}

/// The message signed, with the unlocked account key, to add the passkey
/// `credential_id` (base64url). A session alone cannot add a passkey.
pub fn add_passkey_message(address: &Address, challenge: &str, credential_id: &str) -> String {
    format!(
        "Chartkey: add this passkey to my account.\nAccount: {}\nPasskey: {credential_id}\nChallenge: {challenge}",
        ethers_core::utils::to_checksum(address, None)
    )
}

/// The message signed, with the unlocked account key, to remove the passkey
/// `credential_id` (base64url). A session alone cannot remove a passkey;
/// the server's single-use challenge keeps a signature from being used twice.
pub fn remove_passkey_message(address: &Address, challenge: &str, credential_id: &str) -> String {
    format!(
        "Chartkey: remove this passkey from my account.\nAccount: {}\nPasskey: {credential_id}\nChallenge: {challenge}",
        ethers_core::utils::to_checksum(address, None)
    )
}

/// Domain label of a passkey approval's challenge.
pub const APPROVAL_LABEL: &[u8] = b"chartkey/approval/v1";

/// The WebAuthn challenge of a passkey approval of the ledger message
/// whose EIP-712 digest is `digest`: SHA-256(label ‖ digest ‖ nonce), with
/// the server's single-use `nonce`. The assertion then proves by itself
/// which message was approved (its clientDataJSON carries the challenge),
/// and the browser checks the challenge before it asks for the passkey.
pub fn approval_challenge(digest: &[u8; 32], nonce: &[u8; 32]) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(APPROVAL_LABEL);
    h.update(digest);
    h.update(nonce);
    h.finalize().into()
}

/// The text a ledger's administrator signs (EIP-191) to vouch that block
/// `number` of chain `chain_id` has hash `hash` (0x hex): a checkpoint that
/// `chartkey ledger verify --checkpoint` later holds the chain to.
pub fn checkpoint_message(chain_id: u64, number: u64, hash: &Hash32) -> String {
    format!("Chartkey ledger checkpoint\nChain: {chain_id}\nBlock: {number}\nHash: {hash}")
}

/// EIP-191 `personal_sign` of `message` with the secp256k1 key `secret`;
/// `None` if the bytes are not a valid key.
pub fn sign_message_with_secret(secret: &[u8; 32], message: &str) -> Option<Signature> {
    let key = ethers_core::k256::ecdsa::SigningKey::from_bytes(secret.into()).ok()?;
    let digest = hash_message(message);
    Some(sign_digest(&key, &digest.0).into())
}

/// EIP-191 `personal_sign` of `message`.
pub fn sign_message(keys: &AccountKeys, message: &str) -> Signature {
    let digest = hash_message(message);
    sign_digest(keys.signing_key(), &digest.0).into()
}

/// The address that signed `message`, or `None` for a signature not in
/// the canonical encoding.
pub fn recover_signer(message: &str, signature: &Signature) -> Option<Address> {
    recover_strict(&hash_message(message).0, &signature.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AccountSecret;

    #[test]
    fn an_approval_challenge_names_its_message_and_nonce() {
        let (digest, nonce) = ([1u8; 32], [2u8; 32]);
        let challenge = approval_challenge(&digest, &nonce);
        assert_ne!(challenge, approval_challenge(&[3u8; 32], &nonce));
        assert_ne!(challenge, approval_challenge(&digest, &[3u8; 32]));
        // SHA-256("chartkey/approval/v1" || 0x01*32 || 0x02*32), fixed so
        // the browser, the server and any later audit agree.
        assert_eq!(hex::encode(challenge), APPROVAL_VECTOR);
    }

    const APPROVAL_VECTOR: &str = "b04b0186b2cc351206b2f9e04bf8fd1f53d2528a72d62df28b200c3d97fc86c1";

    #[test]
    fn sign_and_recover() {
        let keys = AccountSecret::from_bytes([4; 32]).derive();
        let msg = restore_message(&keys.address(), "abc123");
        let sig = sign_message(&keys, &msg);
        assert_eq!(recover_signer(&msg, &sig), Some(keys.address()));
        // A different challenge recovers a different (wrong) address.
        assert_ne!(recover_signer(&restore_message(&keys.address(), "abc124"), &sig), Some(keys.address()));
    }

    #[test]
    fn matches_ethers_personal_sign_digest() {
        // EIP-191: keccak256("\x19Ethereum Signed Message:\n" + len + message).
        let msg = "hello";
        let mut data = format!("\x19Ethereum Signed Message:\n{}", msg.len()).into_bytes();
        data.extend_from_slice(msg.as_bytes());
        assert_eq!(hash_message(msg).0, ethers_core::utils::keccak256(data));
    }

    #[test]
    fn messages_name_their_purpose_and_subject() {
        let a = AccountSecret::from_bytes([4; 32]).derive().address();
        let add = add_passkey_message(&a, "c", "cred1");
        assert!(add.contains("add this passkey") && add.contains("cred1") && add.contains("Challenge: c"));
        assert_ne!(add, add_passkey_message(&a, "c", "cred2"));
        let remove = remove_passkey_message(&a, "c", "cred1");
        assert!(remove.contains("remove this passkey") && remove.contains("cred1"));
        assert_ne!(remove, restore_message(&a, "c"));
    }

    #[test]
    fn malformed_signatures() {
        let keys = AccountSecret::from_bytes([4; 32]).derive();
        let good = sign_message(&keys, "m");
        assert_eq!(recover_signer("m", &good), Some(keys.address()));
        let mut v01 = good;
        v01.0[64] -= 27;
        for bad in [Signature([0; 65]), v01] {
            assert_eq!(recover_signer("m", &bad), None, "{bad}");
        }
    }
}
