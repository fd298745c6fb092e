//! The ledger as a test sees it: the contracts `ledger/info` names, their
//! JSON-RPC, signing and relaying messages, and the administrator's key.

use std::path::Path;

use chartkey_core::AccountKeys;
use chartkey_core::eip712::{Domain, IssueCredential, LedgerMessage, RevokeCredential, bytes32_text};
use chartkey_core::value::Signature;
use chartkey_ledger::abi::{ChartkeyDirectory, ChartkeyRecords, SolCall};
use chartkey_ledger::calls::SignedCall;
use chartkey_ledger::convert::to_alloy;
use chartkey_ledger::node::Contracts;
use ethers_core::types::{Address, U256};

use super::{Account, ApiError, Client, Rpc, Site, fns, wallet};

/// The ledger as `ledger/info` describes it, and its JSON-RPC.
pub struct Chain {
    pub rpc: Rpc,
    pub chain_id: u64,
    pub directory: Address,
    pub records: Address,
    pub access: Address,
}

impl Chain {
    pub async fn of(portal: &Site, client: &Client) -> Self {
        let info = client.api(fns::LedgerInfo {}).await.expect("ledger/info");
        Self {
            rpc: portal.rpc(),
            chain_id: info.chain_id,
            directory: info.directory.into(),
            records: info.records.into(),
            access: info.access.into(),
        }
    }

    pub fn sign(&self, keys: &AccountKeys, message: &LedgerMessage) -> Signature {
        chartkey_core::with_ledger_message!(message, m => self.domain_of(m).sign_typed(keys, m))
    }

    /// The domain of the contract that verifies `M`.
    fn domain_of<M: SignedCall>(&self, _: &M) -> Domain {
        let contracts = Contracts {
            directory: to_alloy(self.directory),
            records: to_alloy(self.records),
            access: to_alloy(self.access),
        };
        M::TARGET.domain(self.chain_id, &contracts)
    }

    /// `message` signed by `keys`, relayed by `client`'s session.
    pub async fn relay(
        &self,
        client: &Client,
        keys: &AccountKeys,
        message: LedgerMessage,
    ) -> Result<fns::RelayReceipt, ApiError> {
        let signature = self.sign(keys, &message);
        client.api(fns::LedgerRelay { body: fns::RelayBody { message, signature } }).await
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
        let issued =
            self.issue_credential(authority, clinician, specialty, expires_at).await.expect("credentials/issue");
        assert!(issued.mined, "{issued:?}");
    }

    /// As [`Self::verify_clinician`]; the answer to the issue, mined or not.
    pub async fn issue_credential(
        &self,
        authority: &Account,
        clinician: &Account,
        specialty: &str,
        expires_at: u64,
    ) -> Result<fns::RelayReceipt, ApiError> {
        let body = self.credential_request_answered(authority, clinician, specialty, expires_at).await;
        authority.client.api(fns::CredentialsIssue { body }).await
    }

    /// `clinician` asks `authority` for a credential; the body of the
    /// authority's `credentials/issue` answering it (signed, not sent).
    pub async fn credential_request_answered(
        &self,
        authority: &Account,
        clinician: &Account,
        specialty: &str,
        expires_at: u64,
    ) -> fns::IssueCredentialBody {
        let number = format!("MD-{}", &hex::encode(clinician.keys.address())[..8]);
        let body = fns::CredentialRequestBody {
            authority: authority.keys.address().into(),
            license: super::license(&number, specialty),
        };
        let asked = clinician.client.api(fns::CredentialsRequest { body }).await.expect("credentials/request");
        let desk = authority.client.api(fns::CredentialsDesk {}).await.expect("credentials/desk");
        let request = desk
            .pending
            .iter()
            .find(|r| r.clinician.address == clinician.keys.address())
            .expect("the request is on the authority's desk")
            .id;
        let message = IssueCredential {
            authority: authority.keys.address(),
            clinician: clinician.keys.address(),
            license_id_hash: chartkey_api::license_id_hash(&asked.request.expect("the request").license.license_number),
            specialty: bytes32_text(specialty).unwrap(),
            expires_at,
            nonce: U256::from(desk.next_nonce),
        };
        let signature = self.sign(&authority.keys, &LedgerMessage::IssueCredential(message.clone()));
        fns::IssueCredentialBody { request, message, signature }
    }

    /// `authority` revokes `clinician`'s credential.
    pub async fn revoke_credential(&self, authority: &Account, clinician: &Account) {
        let desk = authority.client.api(fns::CredentialsDesk {}).await.expect("credentials/desk");
        let message = RevokeCredential {
            authority: authority.keys.address(),
            clinician: clinician.keys.address(),
            nonce: U256::from(desk.next_nonce),
        };
        let signature = self.sign(&authority.keys, &LedgerMessage::RevokeCredential(message.clone()));
        authority
            .client
            .api(fns::CredentialsRevoke { body: fns::RevokeCredentialBody { message, signature } })
            .await
            .expect("credentials/revoke");
    }
}
