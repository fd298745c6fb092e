//! The one place Chartkey converts between its two Ethereum libraries:
//! ethers-core, which core and the browser sign EIP-712 messages with, and
//! alloy, which revm, the node and the contract bindings speak.

/// An alloy address as ethers-core's.
pub fn to_ethers(address: alloy_primitives::Address) -> ethers_core::types::Address {
    ethers_core::types::Address::from(address.0.0)
}

/// An ethers-core address as alloy's.
pub fn to_alloy(address: ethers_core::types::Address) -> alloy_primitives::Address {
    alloy_primitives::Address::from(address.0)
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
