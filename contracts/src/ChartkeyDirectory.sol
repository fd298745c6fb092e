// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity 0.8.37;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ChartkeySigned} from "./ChartkeySigned.sol";
import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";

/// @title Chartkey directory: accounts, credentialing authorities, clinician credentials.
/// @notice Every account registers itself: a relayer submits the transaction, but the
/// account's own EIP-712 signature authorises it, so no server can register keys in
/// someone's name. Credentialing authorities are named by the administrator; they issue
/// and revoke clinician credentials, again by signed message.
contract ChartkeyDirectory is ChartkeySigned, Ownable2Step {
    uint8 public constant ROLE_PATIENT = 1;
    uint8 public constant ROLE_CLINICIAN = 2;
    uint8 public constant ROLE_VERIFIER = 3;
    uint8 public constant ROLE_CREDENTIALING_AUTHORITY = 4;

    bytes32 public constant REGISTER_TYPEHASH =
        keccak256("Register(address account,uint8 role,bytes32 encryptionKey,uint256 nonce)");
    bytes32 public constant ISSUE_CREDENTIAL_TYPEHASH = keccak256(
        "IssueCredential(address authority,address clinician,bytes32 licenseIdHash,bytes32 specialty,uint64 expiresAt,uint256 nonce)"
    );
    bytes32 public constant REVOKE_CREDENTIAL_TYPEHASH =
        keccak256("RevokeCredential(address authority,address clinician,uint256 nonce)");

    struct Account {
        uint8 role;
        uint64 registeredAt;
        bytes32 encryptionKey;
    }

    struct Credential {
        address authority;
        uint64 expiresAt;
        bool revoked;
        bytes32 licenseIdHash;
        bytes32 specialty;
    }

    mapping(address account => Account) private _accounts;
    mapping(address authority => bool) public isAuthority;
    mapping(address clinician => Credential) private _credentials;

    event AccountRegistered(address indexed account, uint8 role, bytes32 encryptionKey);
    event EncryptionKeyChanged(address indexed account, bytes32 encryptionKey);
    event AuthoritySet(address indexed authority, bool enabled);
    event CredentialIssued(
        address indexed clinician,
        address indexed authority,
        bytes32 licenseIdHash,
        bytes32 specialty,
        uint64 expiresAt
    );
    event CredentialRevoked(address indexed clinician, address indexed authority);

    error InvalidRole(uint8 role);
    /// An account's role is fixed at registration.
    error RoleChange(uint8 registered, uint8 requested);
    error NotRegistered(address account);
    error NotAuthority(address account);
    error NotClinician(address account);
    error ExpiryInPast(uint64 expiresAt);
    error NoCredential(address clinician);
    /// Only the authority that issued a credential may revoke it.
    error NotIssuer(address clinician, address authority);

    constructor(address admin) EIP712("Chartkey Directory", "1") Ownable(admin) {}

    /// Registers `account` with `role` and X25519 `encryptionKey`, or rotates the key of an
    /// account already registered with the same role.
    function register(address account, uint8 role, bytes32 encryptionKey, uint256 nonce, bytes calldata signature)
        external
    {
        if (role < ROLE_PATIENT || role > ROLE_CREDENTIALING_AUTHORITY) revert InvalidRole(role);
        _useSignature(account, keccak256(abi.encode(REGISTER_TYPEHASH, account, role, encryptionKey, nonce)), nonce, signature);
        Account storage existing = _accounts[account];
        if (existing.role == 0) {
            _accounts[account] = Account(role, uint64(block.timestamp), encryptionKey);
            emit AccountRegistered(account, role, encryptionKey);
        } else {
            if (existing.role != role) revert RoleChange(existing.role, role);
            existing.encryptionKey = encryptionKey;
            emit EncryptionKeyChanged(account, encryptionKey);
        }
    }

    /// Names or removes a credentialing authority (administrator only).
    function setAuthority(address authority, bool enabled) external onlyOwner {
        if (enabled && _accounts[authority].role != ROLE_CREDENTIALING_AUTHORITY) revert NotRegistered(authority);
        isAuthority[authority] = enabled;
        emit AuthoritySet(authority, enabled);
    }

    /// Issues (or renews) a clinician's credential, signed by an authority.
    function issueCredential(
        address authority,
        address clinician,
        bytes32 licenseIdHash,
        bytes32 specialty,
        uint64 expiresAt,
        uint256 nonce,
        bytes calldata signature
    ) external {
        _useSignature(authority, keccak256(
                abi.encode(ISSUE_CREDENTIAL_TYPEHASH, authority, clinician, licenseIdHash, specialty, expiresAt, nonce)
            ), nonce, signature);
        if (!isAuthority[authority]) revert NotAuthority(authority);
        if (_accounts[clinician].role != ROLE_CLINICIAN) revert NotClinician(clinician);
        if (expiresAt <= block.timestamp) revert ExpiryInPast(expiresAt);
        // Another current authority's credential is theirs to renew or revoke, not this one's.
        address issuer = _credentials[clinician].authority;
        if (issuer != address(0) && issuer != authority && isAuthority[issuer]) revert NotIssuer(clinician, authority);
        _credentials[clinician] = Credential(authority, expiresAt, false, licenseIdHash, specialty);
        emit CredentialIssued(clinician, authority, licenseIdHash, specialty, expiresAt);
    }

    /// Revokes a clinician's credential, signed by the authority that issued it.
    function revokeCredential(address authority, address clinician, uint256 nonce, bytes calldata signature) external {
        _useSignature(authority, keccak256(abi.encode(REVOKE_CREDENTIAL_TYPEHASH, authority, clinician, nonce)), nonce, signature);
        Credential storage credential = _credentials[clinician];
        if (credential.authority == address(0)) revert NoCredential(clinician);
        if (credential.authority != authority) revert NotIssuer(clinician, authority);
        credential.revoked = true;
        emit CredentialRevoked(clinician, authority);
    }

    function accountOf(address account) external view returns (uint8 role, bytes32 encryptionKey, uint64 registeredAt) {
        Account storage a = _accounts[account];
        return (a.role, a.encryptionKey, a.registeredAt);
    }

    function credentialOf(address clinician)
        external
        view
        returns (address authority, bytes32 licenseIdHash, bytes32 specialty, uint64 expiresAt, bool revoked)
    {
        Credential storage c = _credentials[clinician];
        return (c.authority, c.licenseIdHash, c.specialty, c.expiresAt, c.revoked);
    }

    /// For a consent from `patient` to `grantee`, in one call: is the patient registered as
    /// one, and does the grantee hold a valid credential.
    function consentParties(address patient, address grantee)
        external
        view
        returns (bool patientRegistered, bool granteeVerified)
    {
        return (_accounts[patient].role == ROLE_PATIENT, credentialValid(grantee));
    }

    /// True while `clinician` holds an unexpired, unrevoked credential from a current authority.
    function credentialValid(address clinician) public view returns (bool) {
        Credential storage c = _credentials[clinician];
        return c.authority != address(0) && !c.revoked && c.expiresAt > block.timestamp && isAuthority[c.authority];
    }
}
