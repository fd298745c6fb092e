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

    /// Call `index` of a bundle reverted with `reason`; the other calls still ran.
    event BundledCallReverted(uint256 indexed index, bytes reason);

    /// Runs calls to this contract one after another in one transaction: a relayer's bundle
    /// of signed messages, which then share one transaction's fixed cost. Each call is
    /// checked exactly as if it were sent alone (its own signature, nonce and rules, and the
    /// same `msg.sender`); a call that reverts changes nothing and is reported in a
    /// `BundledCallReverted` event, and the others still run.
    function bundle(bytes[] calldata calls) external {
        for (uint256 i = 0; i < calls.length; ++i) {
            (bool ok, bytes memory reason) = address(this).delegatecall(calls[i]);
            if (!ok) emit BundledCallReverted(i, reason);
        }
    }

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
