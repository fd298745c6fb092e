//! A local secp256k1 key that signs Ethereum transactions (EIP-1559), for the
//! relayer and for tests.

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, Bytes, Signature, TxKind, U256};
use k256::ecdsa::SigningKey;

pub struct Wallet {
    key: SigningKey,
    address: Address,
}

/// What a transaction pays for gas.
#[derive(Debug, Clone, Copy)]
pub struct Fees {
    pub gas_limit: u64,
    pub max_fee_per_gas: u128,
    pub max_priority_fee_per_gas: u128,
}

impl Wallet {
    /// The wallet of a 32-byte secret key; `None` if it is not a valid key.
    pub fn from_secret(secret: &[u8; 32]) -> Option<Self> {
        let key = SigningKey::from_bytes(secret.into()).ok()?;
        let address = Address::from_public_key(key.verifying_key());
        Some(Self { key, address })
    }

    pub fn random() -> Self {
        loop {
            let mut secret = [0u8; 32];
            rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut secret);
            if let Some(wallet) = Self::from_secret(&secret) {
                return wallet;
            }
        }
    }

    pub fn address(&self) -> Address {
        self.address
    }

    /// The secret key, for writing a key file.
    pub fn secret(&self) -> [u8; 32] {
        self.key.to_bytes().into()
    }

    /// Signs a transaction calling `to` (or creating a contract when `None`).
    pub fn sign(&self, chain_id: u64, nonce: u64, to: Option<Address>, input: Bytes, fees: Fees) -> TxEnvelope {
        self.sign_tx(TxEip1559 {
            chain_id,
            nonce,
            gas_limit: fees.gas_limit,
            max_fee_per_gas: fees.max_fee_per_gas,
            max_priority_fee_per_gas: fees.max_priority_fee_per_gas,
            to: to.map_or(TxKind::Create, TxKind::Call),
            value: U256::ZERO,
            access_list: Default::default(),
            input,
        })
    }

    /// Signs any EIP-1559 transaction.
    pub fn sign_tx(&self, tx: TxEip1559) -> TxEnvelope {
        let (signature, recovery) =
            self.key.sign_prehash_recoverable(tx.signature_hash().as_slice()).expect("a 32-byte prehash signs");
        TxEnvelope::from(tx.into_signed(Signature::from((signature, recovery))))
    }

    /// [`Self::sign`], encoded for eth_sendRawTransaction.
    pub fn sign_raw(&self, chain_id: u64, nonce: u64, to: Option<Address>, input: Bytes, fees: Fees) -> Vec<u8> {
        self.sign(chain_id, nonce, to, input, fees).encoded_2718()
    }
}
