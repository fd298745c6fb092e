//! The ledger as a test sees it: the contracts `ledger/info` names, their
//! JSON-RPC, signing and relaying messages, and the administrator's key.

use std::path::Path;

use chartkey_core::AccountKeys;
use chartkey_core::eip712::{Domain, IssueCredential, LedgerMessage, RevokeCredential, TypedMessage, bytes32_text};
use chartkey_ledger::abi::{ChartkeyDirectory, ChartkeyRecords, SolCall};
use chartkey_ledger::convert::to_alloy;
use ethers_core::types::{Address, U256};
use serde_json::json;

use super::{Account, Answer, Client, Portal, Rpc, wallet};

/// The ledger as `ledger/info` describes it, and its JSON-RPC.
pub struct Chain {
    pub rpc: Rpc,
    pub chain_id: u64,
    pub directory: Address,
    pub records: Address,
}

impl Chain {
    pub async fn of(portal: &impl Portal, client: &Client) -> Self {
        let info = client.call("ledger/info", json!({})).await;
        assert_eq!(info.status, 200, "{:?}", info.body);
        let address = |key: &str| info.body[key].as_str().unwrap().parse::<Address>().unwrap();
        Self {
            rpc: portal.rpc(),
            chain_id: info.body["chain_id"].as_u64().unwrap(),
            directory: address("directory"),
            records: address("records"),
        }
    }

    pub fn sign(&self, keys: &AccountKeys, message: &LedgerMessage) -> String {
        let directory = Domain::directory(self.chain_id, self.directory);
        let records = Domain::records(self.chain_id, self.records);
        fn with(domain: &Domain, keys: &AccountKeys, m: &impl TypedMessage) -> Vec<u8> {
            domain.sign(keys, m)
        }
        let signature = match message {
            LedgerMessage::Register(m) => with(&directory, keys, m),
            LedgerMessage::IssueCredential(m) => with(&directory, keys, m),
            LedgerMessage::RevokeCredential(m) => with(&directory, keys, m),
            LedgerMessage::Anchor(m) => with(&records, keys, m),
            LedgerMessage::AnchorBatch(m) => with(&records, keys, m),
            LedgerMessage::Grant(m) => with(&records, keys, m),
            LedgerMessage::Revoke(m) => with(&records, keys, m),
            LedgerMessage::Access(m) => with(&records, keys, m),
        };
        format!("0x{}", hex::encode(signature))
    }

    /// `message` signed by `keys`, relayed by `client`'s session.
    pub async fn relay(&self, client: &Client, keys: &AccountKeys, message: LedgerMessage) -> Answer {
        let signature = self.sign(keys, &message);
        client.call("ledger/relay", json!({ "body": { "message": message, "signature": signature } })).await
    }

    /// The nonce of the next grant or revocation from `patient` to `grantee`.
    pub async fn consent_nonce(&self, patient: Address, grantee: Address) -> u64 {
        let call = ChartkeyRecords::consentNonceCall { patient: to_alloy(patient), grantee: to_alloy(grantee) };
        self.rpc.view(to_alloy(self.records), call).await.try_into().unwrap()
    }

    /// Names `authority` a credentialing authority, with the administrator's key.
    pub async fn set_authority(&self, data_dir: &Path, authority: Address) {
        let input = ChartkeyDirectory::setAuthorityCall { authority: to_alloy(authority), enabled: true }.abi_encode();
        let admin = wallet(data_dir, "admin.key");
        self.rpc.send(self.chain_id, &admin, self.directory.0.into(), input).await;
    }

    /// `clinician` asks `authority` (already named) to verify them, and the
    /// authority issues the credential until `expires_at`, as the portal's
    /// credentials pages do.
    pub async fn verify_clinician(&self, authority: &Account, clinician: &Account, specialty: &str, expires_at: u64) {
        let issued = self.issue_credential(authority, clinician, specialty, expires_at).await;
        assert_eq!(issued.status, 200, "{:?}", issued.body);
        assert_eq!(issued.body["mined"], true, "{:?}", issued.body);
    }

    /// As [`Self::verify_clinician`]; the answer to the issue, mined or not.
    pub async fn issue_credential(
        &self,
        authority: &Account,
        clinician: &Account,
        specialty: &str,
        expires_at: u64,
    ) -> Answer {
        let body = self.credential_request_answered(authority, clinician, specialty, expires_at).await;
        authority.client.call("credentials/issue", body).await
    }

    /// `clinician` asks `authority` for a credential; the body of the
    /// authority's `credentials/issue` answering it (signed, not sent).
    pub async fn credential_request_answered(
        &self,
        authority: &Account,
        clinician: &Account,
        specialty: &str,
        expires_at: u64,
    ) -> serde_json::Value {
        let asked = clinician
            .client
            .call(
                "credentials/request",
                json!({ "body": {
                    "authority": format!("{:#x}", authority.keys.address()),
                    "license_number": format!("MD-{}", &hex::encode(clinician.keys.address())[..8]),
                    "specialty": specialty,
                    "jurisdiction": "Massachusetts, US",
                    "organisation": "Riverside Clinic",
                }}),
            )
            .await;
        assert_eq!(asked.status, 200, "{:?}", asked.body);
        let desk = authority.client.call("credentials/desk", json!({})).await;
        assert_eq!(desk.status, 200, "{:?}", desk.body);
        let request = desk.body["pending"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| {
                r["clinician"]["address"]
                    .as_str()
                    .unwrap()
                    .eq_ignore_ascii_case(&format!("{:#x}", clinician.keys.address()))
            })
            .expect("the request is on the authority's desk")["id"]
            .clone();
        let message = IssueCredential {
            authority: authority.keys.address(),
            clinician: clinician.keys.address(),
            license_id_hash: chartkey_api::license_id_hash(asked.body["request"]["license_number"].as_str().unwrap()),
            specialty: bytes32_text(specialty).unwrap(),
            expires_at,
            nonce: U256::from(desk.body["next_nonce"].as_u64().unwrap()),
        };
        let signature = self.sign(&authority.keys, &LedgerMessage::IssueCredential(message.clone()));
        json!({ "body": { "request": request, "message": message, "signature": signature } })
    }

    /// `authority` revokes `clinician`'s credential.
    pub async fn revoke_credential(&self, authority: &Account, clinician: &Account) {
        let desk = authority.client.call("credentials/desk", json!({})).await;
        let message = RevokeCredential {
            authority: authority.keys.address(),
            clinician: clinician.keys.address(),
            nonce: U256::from(desk.body["next_nonce"].as_u64().unwrap()),
        };
        let signature = self.sign(&authority.keys, &LedgerMessage::RevokeCredential(message.clone()));
        let revoked = authority
            .client
            .call("credentials/revoke", json!({ "body": { "message": message, "signature": signature } }))
            .await;
        assert_eq!(revoked.status, 200, "{:?}", revoked.body);
    }
}
