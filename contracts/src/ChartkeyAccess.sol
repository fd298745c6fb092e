// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity 0.8.37;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ChartkeySigned} from "./ChartkeySigned.sol";

interface IChartkeyDirectoryAccounts {
    function accountOf(address account) external view returns (uint8 role, bytes32 encryptionKey, uint64 registeredAt);
}

/// @title Chartkey access for people without a credential: SMART Health Links and emergency contacts.
/// @notice Deployed after the Directory and Records contracts (on an existing chain, at a later
/// block), because those two are immutable and grant only to credentialed clinicians.
///
/// Links: the patient's signature creates a link (its id, a fingerprint of its content, its
/// expiry and SMART Health Link flags), updates it, or stops it. The host logs every use of a
/// live link before it answers the manifest request; a use is the host's statement that it
/// released the link's encrypted files to a recipient, named here only by a hash of the label
/// the recipient gave. The patient names the host (the address that may log uses) in the link
/// they sign, so no one else can add uses to a patient's record.
///
/// Emergency contacts: the patient names a contact (an account that accepted the invitation)
/// and a waiting period. The contact's signed request starts the wait; the patient may refuse
/// during it (or at any time after); once the wait has passed, each access the contact signs is
/// logged and the host releases the summary's keys only after that.
///
/// Replay protection: a link is created once (its id is claimed for good in the patient's
/// name); updates and revocations of a link carry the link's `serial`; the patient's messages
/// about a contact carry the pair's `serial`; the contact's requests and accesses spend the
/// contact's nonce (OpenZeppelin `Nonces`).
contract ChartkeyAccess is ChartkeySigned {
    uint8 public constant ROLE_PATIENT = 1;
    /// SMART Health Link flags, as bits: `L` long-term, `P` passcode, `U` direct file.
    uint8 public constant FLAG_LONG_TERM = 1;
    uint8 public constant FLAG_PASSCODE = 2;
    uint8 public constant FLAG_DIRECT = 4;
    /// Longest a link can be given to live in one signature (0 means no expiry).
    uint64 public constant MAX_LINK_SECONDS = 366 days;
    uint32 public constant MAX_WAIT_SECONDS = 7 days;

    bytes32 public constant LINK_TYPEHASH =
        keccak256("Link(address patient,bytes32 linkId,bytes32 contentHash,uint64 expiresAt,uint8 flags,address host)");
    bytes32 public constant LINK_UPDATE_TYPEHASH = keccak256(
        "LinkUpdate(address patient,bytes32 linkId,bytes32 contentHash,uint64 expiresAt,uint256 nonce)"
    );
    bytes32 public constant LINK_REVOKE_TYPEHASH =
        keccak256("LinkRevoke(address patient,bytes32 linkId,uint256 nonce)");
    bytes32 public constant CONTACT_TYPEHASH =
        keccak256("EmergencyContact(address patient,address contact,uint32 waitSeconds,uint256 nonce)");
    bytes32 public constant CONTACT_REMOVE_TYPEHASH =
        keccak256("EmergencyContactRemove(address patient,address contact,uint256 nonce)");
    bytes32 public constant REFUSAL_TYPEHASH =
        keccak256("EmergencyRefusal(address patient,address contact,uint256 nonce)");
    bytes32 public constant REQUEST_TYPEHASH =
        keccak256("EmergencyRequest(address contact,address patient,uint256 nonce)");
    bytes32 public constant EMERGENCY_ACCESS_TYPEHASH =
        keccak256("EmergencyAccess(address contact,address patient,uint256 nonce)");

    /// Two storage slots. `serial` counts the link's changes and is the nonce of the next one;
    /// `host` alone may log its uses.
    struct Link {
        uint64 createdAt;
        uint64 expiresAt;
        uint32 serial;
        uint32 uses;
        uint8 flags;
        bool revoked;
        address host;
    }

    /// One storage slot. `requestedAt` is zero when no request is open.
    struct Contact {
        uint64 requestedAt;
        uint32 waitSeconds;
        uint32 serial;
        bool active;
    }

    IChartkeyDirectoryAccounts public immutable directory;

    mapping(address patient => mapping(bytes32 linkId => Link)) private _links;
    mapping(address patient => mapping(address contact => Contact)) private _contacts;

    event LinkCreated(
        address indexed patient, bytes32 indexed linkId, bytes32 contentHash, uint64 expiresAt, uint8 flags
    );
    /// `contentHash` is zero when the content did not change.
    event LinkUpdated(
        address indexed patient, bytes32 indexed linkId, uint32 serial, bytes32 contentHash, uint64 expiresAt
    );
    event LinkRevoked(address indexed patient, bytes32 indexed linkId);
    /// The host released the link's files to a recipient who gave a label hashing to
    /// `recipientHash`; `useId` is the host's own name for this use (unique per use).
    event LinkUsed(address indexed patient, bytes32 indexed linkId, bytes32 recipientHash, bytes32 useId, uint32 uses);
    event EmergencyContactSet(address indexed patient, address indexed contact, uint32 serial, uint32 waitSeconds);
    event EmergencyContactRemoved(address indexed patient, address indexed contact, uint32 serial);
    event EmergencyRequested(address indexed patient, address indexed contact, uint64 availableAt);
    event EmergencyRefused(address indexed patient, address indexed contact, uint32 serial);
    event EmergencyAccessed(address indexed patient, address indexed contact);

    error NotPatient(address account);
    error NotRegistered(address account);
    error ZeroId();
    error BadFlags(uint8 flags);
    error ExpiryInPast(uint64 expiresAt);
    error ExpiryTooFar(uint64 expiresAt);
    error LinkExists(bytes32 linkId);
    error UnknownLink(bytes32 linkId);
    error LinkIsRevoked(bytes32 linkId);
    error LinkExpired(bytes32 linkId, uint64 expiresAt);
    /// Only the host the patient named in the link may log its uses.
    error NotHost(address caller);
    /// Only a long-term (`L`) link's content can change.
    error NotLongTerm(bytes32 linkId);
    error SelfContact();
    error WaitTooLong(uint32 waitSeconds);
    error NotContact(address patient, address contact);
    error RequestOpen(address patient, address contact, uint64 availableAt);
    error NoRequest(address patient, address contact);
    error StillWaiting(address patient, address contact, uint64 availableAt);

    constructor(IChartkeyDirectoryAccounts directory_) EIP712("Chartkey Access", "1") {
        directory = directory_;
    }

    // ----- Links -----

    /// The patient creates link `linkId` for content fingerprinted by `contentHash`, until
    /// `expiresAt` (0: no expiry), served by `host` (the address that logs its uses). A link is
    /// created once; its flags and host never change.
    function createLink(
        address patient,
        bytes32 linkId,
        bytes32 contentHash,
        uint64 expiresAt,
        uint8 flags,
        address host,
        bytes calldata signature
    ) external {
        _checkSignature(
            patient,
            keccak256(abi.encode(LINK_TYPEHASH, patient, linkId, contentHash, expiresAt, flags, host)),
            signature
        );
        _requirePatient(patient);
        if (linkId == bytes32(0) || contentHash == bytes32(0) || host == address(0)) revert ZeroId();
        if (flags > 7 || (flags & FLAG_PASSCODE != 0 && flags & FLAG_DIRECT != 0)) revert BadFlags(flags);
        _checkExpiry(expiresAt);
        if (_links[patient][linkId].createdAt != 0) revert LinkExists(linkId);
        _links[patient][linkId] = Link(uint64(block.timestamp), expiresAt, 0, 0, flags, false, host);
        emit LinkCreated(patient, linkId, contentHash, expiresAt, flags);
    }

    /// The patient changes a live link's expiry and, for a long-term link, its content
    /// (`contentHash` zero: unchanged). `nonce` is the link's serial.
    function updateLink(
        address patient,
        bytes32 linkId,
        bytes32 contentHash,
        uint64 expiresAt,
        uint256 nonce,
        bytes calldata signature
    ) external {
        _checkSignature(
            patient,
            keccak256(abi.encode(LINK_UPDATE_TYPEHASH, patient, linkId, contentHash, expiresAt, nonce)),
            signature
        );
        Link memory link = _links[patient][linkId];
        _requireLive(link, linkId);
        _useSerial(patient, link.serial, nonce);
        if (contentHash != bytes32(0) && link.flags & FLAG_LONG_TERM == 0) revert NotLongTerm(linkId);
        _checkExpiry(expiresAt);
        link.serial += 1;
        link.expiresAt = expiresAt;
        _links[patient][linkId] = link;
        emit LinkUpdated(patient, linkId, link.serial, contentHash, expiresAt);
    }

    /// The patient stops a link, at once and for good. `nonce` is the link's serial.
    function revokeLink(address patient, bytes32 linkId, uint256 nonce, bytes calldata signature) external {
        _checkSignature(patient, keccak256(abi.encode(LINK_REVOKE_TYPEHASH, patient, linkId, nonce)), signature);
        Link memory link = _links[patient][linkId];
        if (link.createdAt == 0) revert UnknownLink(linkId);
        if (link.revoked) revert LinkIsRevoked(linkId);
        _useSerial(patient, link.serial, nonce);
        link.serial += 1;
        link.revoked = true;
        _links[patient][linkId] = link;
        emit LinkRevoked(patient, linkId);
    }

    /// Logs a use of a live link; reverts, saying why, when the link is unknown, revoked or
    /// expired, or the caller is not the link's host. Sent by the host before it answers a
    /// manifest request (not signed by the recipient, who has no account: the event is the
    /// host's own statement). `useId` is the host's random name for this use, so that two uses
    /// never make the same call.
    function logLinkUse(address patient, bytes32 linkId, bytes32 recipientHash, bytes32 useId) external {
        Link storage link = _links[patient][linkId];
        _requireLive(link, linkId);
        if (msg.sender != link.host) revert NotHost(msg.sender);
        if (useId == bytes32(0)) revert ZeroId();
        uint32 uses = link.uses + 1;
        link.uses = uses;
        emit LinkUsed(patient, linkId, recipientHash, useId, uses);
    }

    function linkOf(address patient, bytes32 linkId)
        external
        view
        returns (bool exists, uint8 flags, uint64 expiresAt, uint32 serial, uint32 uses, bool revoked, address host)
    {
        Link storage l = _links[patient][linkId];
        return (l.createdAt != 0, l.flags, l.expiresAt, l.serial, l.uses, l.revoked, l.host);
    }

    // ----- Emergency contacts -----

    /// The patient names `contact` (or changes its waiting period), clearing any open request.
    /// `nonce` is the pair's serial ([`contactOf`]).
    function setEmergencyContact(
        address patient,
        address contact,
        uint32 waitSeconds,
        uint256 nonce,
        bytes calldata signature
    ) external {
        _checkSignature(patient, keccak256(abi.encode(CONTACT_TYPEHASH, patient, contact, waitSeconds, nonce)), signature);
        _requirePatient(patient);
        if (contact == patient) revert SelfContact();
        (,, uint64 registeredAt) = directory.accountOf(contact);
        if (registeredAt == 0) revert NotRegistered(contact);
        if (waitSeconds > MAX_WAIT_SECONDS) revert WaitTooLong(waitSeconds);
        Contact memory c = _contacts[patient][contact];
        _useSerial(patient, c.serial, nonce);
        _contacts[patient][contact] = Contact(0, waitSeconds, c.serial + 1, true);
        emit EmergencyContactSet(patient, contact, c.serial + 1, waitSeconds);
    }

    /// The patient removes `contact`, at once (an open or granted request ends with it).
    function removeEmergencyContact(address patient, address contact, uint256 nonce, bytes calldata signature)
        external
    {
        _checkSignature(patient, keccak256(abi.encode(CONTACT_REMOVE_TYPEHASH, patient, contact, nonce)), signature);
        Contact memory c = _contacts[patient][contact];
        if (!c.active) revert NotContact(patient, contact);
        _useSerial(patient, c.serial, nonce);
        _contacts[patient][contact] = Contact(0, c.waitSeconds, c.serial + 1, false);
        emit EmergencyContactRemoved(patient, contact, c.serial + 1);
    }

    /// The contact asks for emergency access; it opens once the waiting period has passed.
    function requestEmergencyAccess(address contact, address patient, uint256 nonce, bytes calldata signature)
        external
    {
        _useSignature(contact, keccak256(abi.encode(REQUEST_TYPEHASH, contact, patient, nonce)), nonce, signature);
        Contact storage c = _contacts[patient][contact];
        if (!c.active) revert NotContact(patient, contact);
        if (c.requestedAt != 0) revert RequestOpen(patient, contact, c.requestedAt + c.waitSeconds);
        c.requestedAt = uint64(block.timestamp);
        emit EmergencyRequested(patient, contact, uint64(block.timestamp) + c.waitSeconds);
    }

    /// The patient refuses the contact's open request (during the wait, or ends access granted
    /// after it). The contact stays named and may ask again.
    function refuseEmergencyAccess(address patient, address contact, uint256 nonce, bytes calldata signature)
        external
    {
        _checkSignature(patient, keccak256(abi.encode(REFUSAL_TYPEHASH, patient, contact, nonce)), signature);
        Contact memory c = _contacts[patient][contact];
        if (!c.active) revert NotContact(patient, contact);
        if (c.requestedAt == 0) revert NoRequest(patient, contact);
        _useSerial(patient, c.serial, nonce);
        _contacts[patient][contact] = Contact(0, c.waitSeconds, c.serial + 1, true);
        emit EmergencyRefused(patient, contact, c.serial + 1);
    }

    /// Logs an emergency access by the contact, signed by the contact; reverts, saying why, while
    /// no request is open or its wait has not passed. The host releases nothing before this.
    function logEmergencyAccess(address contact, address patient, uint256 nonce, bytes calldata signature) external {
        _useSignature(
            contact, keccak256(abi.encode(EMERGENCY_ACCESS_TYPEHASH, contact, patient, nonce)), nonce, signature
        );
        Contact memory c = _contacts[patient][contact];
        if (!c.active) revert NotContact(patient, contact);
        if (c.requestedAt == 0) revert NoRequest(patient, contact);
        uint64 availableAt = c.requestedAt + c.waitSeconds;
        if (block.timestamp < availableAt) revert StillWaiting(patient, contact, availableAt);
        emit EmergencyAccessed(patient, contact);
    }

    function contactOf(address patient, address contact)
        external
        view
        returns (bool active, uint32 waitSeconds, uint32 serial, uint64 requestedAt, uint64 availableAt)
    {
        Contact storage c = _contacts[patient][contact];
        uint64 available = c.requestedAt == 0 ? 0 : c.requestedAt + c.waitSeconds;
        return (c.active, c.waitSeconds, c.serial, c.requestedAt, available);
    }

    // ----- Internals -----

    function _requirePatient(address patient) private view {
        (uint8 role,,) = directory.accountOf(patient);
        if (role != ROLE_PATIENT) revert NotPatient(patient);
    }

    function _requireLive(Link memory link, bytes32 linkId) private view {
        if (link.createdAt == 0) revert UnknownLink(linkId);
        if (link.revoked) revert LinkIsRevoked(linkId);
        if (link.expiresAt != 0 && link.expiresAt <= block.timestamp) revert LinkExpired(linkId, link.expiresAt);
    }

    function _checkExpiry(uint64 expiresAt) private view {
        if (expiresAt == 0) return;
        if (expiresAt <= block.timestamp) revert ExpiryInPast(expiresAt);
        if (expiresAt > block.timestamp + MAX_LINK_SECONDS) revert ExpiryTooFar(expiresAt);
    }

    function _useSerial(address signer, uint32 current, uint256 nonce) private pure {
        if (nonce != current) revert InvalidAccountNonce(signer, current);
    }
}
