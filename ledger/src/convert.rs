//! The one place Chartkey converts between its two Ethereum libraries:
//! ethers-core, which core and the browser sign EIP-712 messages with, and
//! alloy, which revm, the node and the contract bindings speak; and from
//! alloy's values to core's wire values ([`chartkey_core::value`]).

use chartkey_core::value;

/// An alloy address as ethers-core's.
pub fn to_ethers(address: alloy_primitives::Address) -> ethers_core::types::Address {
    ethers_core::types::Address::from(address.0.0)
}

/// An ethers-core address as alloy's.
pub fn to_alloy(address: ethers_core::types::Address) -> alloy_primitives::Address {
    alloy_primitives::Address::from(address.0)
}

/// An address as core's wire value.
pub fn address(address: alloy_primitives::Address) -> value::Address {
    value::Address(address.0.0)
}

/// Core's wire address as alloy's.
pub fn alloy(address: value::Address) -> alloy_primitives::Address {
    alloy_primitives::Address::from(address.0)
}

/// A hash (transaction, block, root) as core's wire value.
pub fn hash(hash: alloy_primitives::B256) -> value::Hash32 {
    value::Hash32(hash.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips() {
        let alloy = alloy_primitives::Address::repeat_byte(0xab);
        assert_eq!(super::to_alloy(super::to_ethers(alloy)), alloy);
        assert_eq!(format!("{:?}", super::to_ethers(alloy)), format!("{alloy:#x}"));
    }
}
