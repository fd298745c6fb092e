// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity 0.8.37;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

/// @title Messages signed by the people they speak for.
/// @notice Shared by Chartkey's contracts: EIP-712 verification of a signer, per-signer nonces
/// (OpenZeppelin `Nonces`), and the digest for clients to compare with their own.
abstract contract ChartkeySigned is EIP712, Nonces {
    /// The signature is valid but was made by someone other than the account it names.
    error WrongSigner(address expected, address actual);

    /// The EIP-712 digest for `structHash` under this contract's domain (for clients to check
    /// they sign exactly what the contract verifies).
    function hashTypedData(bytes32 structHash) external view returns (bytes32) {
        return _hashTypedDataV4(structHash);
    }

    /// Reverts unless `signature` over `structHash` is `expected`'s.
    function _checkSignature(address expected, bytes32 structHash, bytes calldata signature) internal view {
        address actual = ECDSA.recover(_hashTypedDataV4(structHash), signature);
        if (actual != expected) revert WrongSigner(expected, actual);
    }

    /// Reverts unless `signature` over `structHash` is `expected`'s, then spends its `nonce`.
    function _useSignature(address expected, bytes32 structHash, uint256 nonce, bytes calldata signature) internal {
        _checkSignature(expected, structHash, signature);
        _useCheckedNonce(expected, nonce);
    }
}
