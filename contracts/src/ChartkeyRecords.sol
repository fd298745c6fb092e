// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity 0.8.37;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ChartkeySigned} from "./ChartkeySigned.sol";

interface IChartkeyDirectory {
    function consentParties(address patient, address grantee)
        external
        view
        returns (bool patientRegistered, bool granteeVerified);
    function credentialValid(address clinician) external view returns (bool);
}

/// @title Chartkey records: fingerprints of records, the patient's consents, and every access.
/// @notice Every state change is authorised by an EIP-712 signature of the person it speaks
/// for (patient, author, grantee), checked here; the relayer that submits the transaction
/// cannot act on its own. A grant reaches only a clinician with a valid credential, and an
/// access is logged only while the grant and the credential are both live. Records and
/// batches are kept per patient, so no one can claim an id in another patient's chart.
///
/// Replay protection, per signer: an access request spends the grantee's nonce
/// (OpenZeppelin `Nonces`); a grant or revocation spends the nonce of the patient's consents
/// to that grantee, which is the pair's `serial` kept in the grant's own storage slot (so a
/// consent costs one storage write, and consents to different clinicians never wait on each
/// other); an anchor or batch is unique by its record id or root, which it claims for good.
contract ChartkeyRecords is ChartkeySigned {
    uint8 public constant SCOPE_RECORDS = 0;
    uint8 public constant SCOPE_CATEGORIES = 1;
    uint8 public constant SCOPE_EVERYTHING = 2;
    /// Categories are bits of a uint32.
    uint8 public constant CATEGORY_COUNT = 32;
    /// Longest consent a patient can give in one signature.
    uint64 public constant MAX_GRANT_SECONDS = 366 days;

    bytes32 public constant ANCHOR_TYPEHASH = keccak256(
        "Anchor(address author,address patient,bytes32 recordId,bytes32 ciphertextHash,uint8 category,bytes32 amends)"
    );
    bytes32 public constant ANCHOR_BATCH_TYPEHASH =
        keccak256("AnchorBatch(address author,address patient,bytes32 root,uint32 count)");
    bytes32 public constant GRANT_TYPEHASH = keccak256(
        "Grant(address patient,address grantee,uint8 scope,uint32 categories,bytes32[] records,bool write,uint64 expiresAt,uint256 nonce)"
    );
    bytes32 public constant REVOKE_TYPEHASH = keccak256("Revoke(address patient,address grantee,uint256 nonce)");
    bytes32 public constant ACCESS_TYPEHASH =
        keccak256("Access(address grantee,address patient,bytes32 recordId,uint256 nonce)");

    struct Record {
        uint8 category;
        uint64 anchoredAt;
        address author;
        bytes32 ciphertextHash;
    }

    /// One storage slot: the latest consent from a patient to a grantee. `serial` counts the
    /// grants and revocations signed between them, and is the nonce of the next one.
    struct Grant {
        uint64 expiresAt;
        uint64 grantedAt;
        uint32 serial;
        uint32 categories;
        uint8 scope;
        bool write;
        bool revoked;
    }

    /// One storage slot.
    struct Batch {
        uint32 count;
        uint64 anchoredAt;
        address author;
    }

    IChartkeyDirectory public immutable directory;

    mapping(address patient => mapping(bytes32 recordId => Record)) private _records;
    mapping(address patient => mapping(bytes32 root => Batch)) private _batches;
    mapping(address patient => mapping(address grantee => Grant)) private _grants;
    /// Records listed in a grant, by the grant's serial (a new grant forgets the old list).
    mapping(address patient => mapping(address grantee => mapping(bytes32 recordId => uint32 serial))) private _listed;

    event RecordAnchored(
        address indexed patient,
        bytes32 indexed recordId,
        address indexed author,
        bytes32 ciphertextHash,
        uint8 category,
        bytes32 amends
    );
    event BatchAnchored(address indexed patient, bytes32 indexed root, address indexed author, uint32 count);
    /// A record of a batch brought into the chart by its audit path ([`proveBatchRecord`]).
    event BatchRecordProven(address indexed patient, bytes32 indexed recordId, bytes32 indexed root, uint32 index);
    event Granted(
        address indexed patient,
        address indexed grantee,
        uint32 serial,
        uint8 scope,
        uint32 categories,
        bytes32[] records,
        bool write,
        uint64 expiresAt
    );
    /// `serial` is the grant stopped, or 0 when none was in force (the revocation still
    /// spends the pair's nonce, voiding any grant signed earlier and not yet submitted).
    event Revoked(address indexed patient, address indexed grantee, uint32 serial);
    event Accessed(address indexed patient, address indexed grantee, bytes32 indexed recordId, uint32 serial);

    error NotPatient(address account);
    error UnverifiedGrantee(address grantee);
    error InvalidScope(uint8 scope);
    error EmptyScope();
    /// Fields that the chosen scope does not use were given (records with categories, …).
    error ScopeMismatch();
    /// Write access is given by category (or everything), not on a list of records.
    error WriteNeedsCategories();
    error InvalidCategory(uint8 category);
    error ZeroId();
    error ExpiryInPast(uint64 expiresAt);
    error ExpiryTooFar(uint64 expiresAt);
    error RecordExists(bytes32 recordId);
    error BatchExists(bytes32 root);
    error EmptyBatch();
    error UnknownRecord(bytes32 recordId);
    error NotAuthorisedAuthor(address author);
    error NoGrant(address patient, address grantee);
    error GrantRevoked(address patient, address grantee);
    error GrantExpired(address patient, address grantee, uint64 expiresAt);
    error CredentialInvalid(address grantee);
    error OutOfScope(bytes32 recordId);
    error UnknownBatch(bytes32 root);
    error BadInclusionProof(bytes32 recordId);

    constructor(IChartkeyDirectory directory_) EIP712("Chartkey Records", "1") {
        directory = directory_;
    }

    // ----- Records -----

    /// Anchors one record's ciphertext hash in `patient`'s chart. `amends` names the record it
    /// corrects (or zero); a grantee may only correct records anchored here, of categories it
    /// may write; the patient may also correct a record of one of their batches.
    function anchor(
        address author,
        address patient,
        bytes32 recordId,
        bytes32 ciphertextHash,
        uint8 category,
        bytes32 amends,
        bytes calldata signature
    ) external {
        _checkSignature(
            author,
            keccak256(abi.encode(ANCHOR_TYPEHASH, author, patient, recordId, ciphertextHash, category, amends)),
            signature
        );
        if (recordId == bytes32(0)) revert ZeroId();
        if (category >= CATEGORY_COUNT) revert InvalidCategory(category);
        mapping(bytes32 => Record) storage chart = _records[patient];
        if (chart[recordId].anchoredAt != 0) revert RecordExists(recordId);
        uint256 writable = _writableCategories(author, patient);
        if ((writable >> category) & 1 == 0) revert NotAuthorisedAuthor(author);
        if (amends != bytes32(0)) {
            Record storage amended = chart[amends];
            if (amended.anchoredAt != 0) {
                if ((writable >> amended.category) & 1 == 0) revert NotAuthorisedAuthor(author);
            } else if (author != patient) {
                // A record inside a batch is not held here by itself: only the patient may
                // correct one (the reader checks the link against the batch's root).
                revert UnknownRecord(amends);
            }
        }
        chart[recordId] = Record(category, uint64(block.timestamp), author, ciphertextHash);
        emit RecordAnchored(patient, recordId, author, ciphertextHash, category, amends);
    }

    /// Anchors many records at once as one RFC 6962 Merkle root over their leaves.
    function anchorBatch(address author, address patient, bytes32 root, uint32 count, bytes calldata signature)
        external
    {
        _checkSignature(author, keccak256(abi.encode(ANCHOR_BATCH_TYPEHASH, author, patient, root, count)), signature);
        if (root == bytes32(0)) revert ZeroId();
        if (count == 0) revert EmptyBatch();
        if (_batches[patient][root].anchoredAt != 0) revert BatchExists(root);
        // A batch's categories are inside its leaves: only the patient, or a grantee allowed to
        // write everything, may anchor one.
        if (_writableCategories(author, patient) != ALL_CATEGORIES) revert NotAuthorisedAuthor(author);
        _batches[patient][root] = Batch(count, uint64(block.timestamp), author);
        emit BatchAnchored(patient, root, author, count);
    }

    /// Brings one record of an anchored batch into `patient`'s chart, as if it had been anchored
    /// alone by the batch's author when the batch was, so that it can be listed in a grant and
    /// its accesses logged. Anyone may submit it: the RFC 9162 audit path from the record's leaf
    /// to the root the patient's batch holds is the authority, and the leaf is exactly what the
    /// author signed into the batch. Proving a record already proven changes nothing.
    function proveBatchRecord(
        address patient,
        bytes32 root,
        uint32 index,
        bytes32 recordId,
        bytes32 ciphertextHash,
        uint8 category,
        bytes32 amends,
        bytes32[] calldata path
    ) external {
        Batch memory b = _batches[patient][root];
        if (b.anchoredAt == 0) revert UnknownBatch(root);
        if (recordId == bytes32(0)) revert ZeroId();
        if (category >= CATEGORY_COUNT) revert InvalidCategory(category);
        bytes32 leaf = sha256(abi.encodePacked(bytes1(0x00), recordId, ciphertextHash, category, amends));
        if (!_included(leaf, index, b.count, path, root)) revert BadInclusionProof(recordId);
        Record storage r = _records[patient][recordId];
        if (r.anchoredAt != 0) {
            if (r.ciphertextHash != ciphertextHash) revert RecordExists(recordId);
            return;
        }
        _records[patient][recordId] = Record(category, b.anchoredAt, b.author, ciphertextHash);
        emit BatchRecordProven(patient, recordId, root, index);
    }

    function recordOf(address patient, bytes32 recordId)
        external
        view
        returns (bool exists, uint8 category, uint64 anchoredAt, address author, bytes32 ciphertextHash)
    {
        Record storage r = _records[patient][recordId];
        return (r.anchoredAt != 0, r.category, r.anchoredAt, r.author, r.ciphertextHash);
    }

    function batchOf(address patient, bytes32 root)
        external
        view
        returns (uint32 count, uint64 anchoredAt, address author)
    {
        Batch storage b = _batches[patient][root];
        return (b.count, b.anchoredAt, b.author);
    }

    // ----- Consent -----

    /// The patient grants `grantee` access to listed records (read only), categories or
    /// everything, read or read+write, until `expiresAt`. Replaces any earlier grant to the
    /// same grantee. `nonce` is the pair's [`consentNonce`].
    function grant(
        address patient,
        address grantee,
        uint8 scope,
        uint32 categories,
        bytes32[] calldata records,
        bool write,
        uint64 expiresAt,
        uint256 nonce,
        bytes calldata signature
    ) external {
        _checkSignature(patient, _grantHash(patient, grantee, scope, categories, records, write, expiresAt, nonce), signature);
        uint32 serial = _useConsentNonce(patient, grantee, nonce);
        (bool patientRegistered, bool granteeVerified) = directory.consentParties(patient, grantee);
        if (!patientRegistered) revert NotPatient(patient);
        if (!granteeVerified) revert UnverifiedGrantee(grantee);
        if (expiresAt <= block.timestamp) revert ExpiryInPast(expiresAt);
        if (expiresAt > block.timestamp + MAX_GRANT_SECONDS) revert ExpiryTooFar(expiresAt);
        if (scope == SCOPE_RECORDS) {
            if (categories != 0) revert ScopeMismatch();
            if (write) revert WriteNeedsCategories();
            _list(patient, grantee, records, serial);
        } else if (scope == SCOPE_CATEGORIES) {
            if (records.length != 0) revert ScopeMismatch();
            if (categories == 0) revert EmptyScope();
        } else if (scope == SCOPE_EVERYTHING) {
            if (records.length != 0 || categories != 0) revert ScopeMismatch();
        } else {
            revert InvalidScope(scope);
        }
        _grants[patient][grantee] = Grant(expiresAt, uint64(block.timestamp), serial, categories, scope, write, false);
        emit Granted(patient, grantee, serial, scope, categories, records, write, expiresAt);
    }

    /// The patient stops sharing with `grantee`, at once. Always spends the pair's nonce, so a
    /// grant signed earlier but not yet submitted can never take effect afterwards.
    function revoke(address patient, address grantee, uint256 nonce, bytes calldata signature) external {
        _checkSignature(patient, keccak256(abi.encode(REVOKE_TYPEHASH, patient, grantee, nonce)), signature);
        Grant memory g = _grants[patient][grantee];
        uint32 serial = _useConsentNonce(patient, grantee, nonce);
        uint32 stopped = g.grantedAt != 0 && !g.revoked ? g.serial : 0;
        g.serial = serial;
        g.revoked = true;
        _grants[patient][grantee] = g;
        emit Revoked(patient, grantee, stopped);
    }

    /// The nonce the next grant or revocation from `patient` to `grantee` must carry.
    function consentNonce(address patient, address grantee) external view returns (uint256) {
        return _grants[patient][grantee].serial;
    }

    function grantOf(address patient, address grantee)
        external
        view
        returns (uint32 serial, uint8 scope, uint32 categories, bool write, uint64 expiresAt, bool revoked)
    {
        Grant storage g = _grants[patient][grantee];
        return (g.serial, g.scope, g.categories, g.write, g.expiresAt, g.revoked);
    }

    /// True when `grantee` may read `recordId` of `patient` now.
    function canAccess(address grantee, address patient, bytes32 recordId) external view returns (bool) {
        return _accessError(grantee, patient, recordId).length == 0;
    }

    /// Records an access by `grantee`, signed by the grantee; reverts, saying why, when the
    /// access is not allowed. The server releases nothing before this succeeds.
    function logAccess(address grantee, address patient, bytes32 recordId, uint256 nonce, bytes calldata signature)
        external
    {
        _useSignature(grantee, keccak256(abi.encode(ACCESS_TYPEHASH, grantee, patient, recordId, nonce)), nonce, signature);
        bytes memory refusal = _accessError(grantee, patient, recordId);
        if (refusal.length != 0) {
            assembly ("memory-safe") {
                revert(add(refusal, 32), mload(refusal))
            }
        }
        emit Accessed(patient, grantee, recordId, _grants[patient][grantee].serial);
    }

    // ----- Internals -----

    uint256 private constant ALL_CATEGORIES = type(uint256).max;

    /// RFC 9162 §2.1.3.2: whether `path` leads from the leaf hash at `index` of a tree of
    /// `size` leaves to `root` (node hash: SHA-256(0x01 || left || right)).
    function _included(bytes32 leaf, uint256 index, uint256 size, bytes32[] calldata path, bytes32 root)
        private
        pure
        returns (bool)
    {
        if (index >= size) return false;
        uint256 fn = index;
        uint256 sn = size - 1;
        bytes32 r = leaf;
        for (uint256 i = 0; i < path.length; i++) {
            if (sn == 0) return false;
            if (fn & 1 == 1 || fn == sn) {
                r = sha256(abi.encodePacked(bytes1(0x01), path[i], r));
                if (fn & 1 == 0) {
                    while (fn & 1 == 0 && fn != 0) {
                        fn >>= 1;
                        sn >>= 1;
                    }
                }
            } else {
                r = sha256(abi.encodePacked(bytes1(0x01), r, path[i]));
            }
            fn >>= 1;
            sn >>= 1;
        }
        return sn == 0 && r == root;
    }

    /// Reverts unless `nonce` is the pair's next consent nonce; returns the serial it becomes.
    function _useConsentNonce(address patient, address grantee, uint256 nonce) private view returns (uint32) {
        uint32 current = _grants[patient][grantee].serial;
        if (nonce != current) revert InvalidAccountNonce(patient, current);
        return current + 1;
    }

    function _grantHash(
        address patient,
        address grantee,
        uint8 scope,
        uint32 categories,
        bytes32[] calldata records,
        bool write,
        uint64 expiresAt,
        uint256 nonce
    ) private pure returns (bytes32) {
        return keccak256(
            abi.encode(
                GRANT_TYPEHASH,
                patient,
                grantee,
                scope,
                categories,
                keccak256(abi.encodePacked(records)),
                write,
                expiresAt,
                nonce
            )
        );
    }

    function _list(address patient, address grantee, bytes32[] calldata records, uint32 serial) private {
        if (records.length == 0) revert EmptyScope();
        mapping(bytes32 => Record) storage chart = _records[patient];
        mapping(bytes32 => uint32) storage listed = _listed[patient][grantee];
        for (uint256 i = 0; i < records.length; i++) {
            if (chart[records[i]].anchoredAt == 0) revert UnknownRecord(records[i]);
            listed[records[i]] = serial;
        }
    }

    /// Empty when access is allowed; otherwise the ABI-encoded custom error saying why.
    function _accessError(address grantee, address patient, bytes32 recordId) private view returns (bytes memory) {
        Record storage r = _records[patient][recordId];
        if (r.anchoredAt == 0) return abi.encodeWithSelector(UnknownRecord.selector, recordId);
        if (grantee == patient) return "";
        Grant memory g = _grants[patient][grantee];
        uint8 state = _grantError(g, grantee);
        if (state == 1) return abi.encodeWithSelector(NoGrant.selector, patient, grantee);
        if (state == 2) return abi.encodeWithSelector(GrantRevoked.selector, patient, grantee);
        if (state == 3) return abi.encodeWithSelector(GrantExpired.selector, patient, grantee, g.expiresAt);
        if (state == 4) return abi.encodeWithSelector(CredentialInvalid.selector, grantee);
        if (!_inScope(g, patient, grantee, recordId, r.category)) {
            return abi.encodeWithSelector(OutOfScope.selector, recordId);
        }
        return "";
    }

    /// 0 live; 1 none; 2 revoked; 3 expired; 4 the grantee's credential is not valid.
    function _grantError(Grant memory g, address grantee) private view returns (uint8) {
        if (g.grantedAt == 0) return 1;
        if (g.revoked) return 2;
        if (g.expiresAt <= block.timestamp) return 3;
        if (!directory.credentialValid(grantee)) return 4;
        return 0;
    }

    function _inScope(Grant memory g, address patient, address grantee, bytes32 recordId, uint8 category)
        private
        view
        returns (bool)
    {
        if (g.scope == SCOPE_EVERYTHING) return true;
        if (g.scope == SCOPE_CATEGORIES) return (g.categories >> category) & 1 == 1;
        return _listed[patient][grantee][recordId] == g.serial;
    }

    /// The categories (bit n: category n) `author` may add to `patient`'s chart: all of them for
    /// the patient and for a grantee with a live read+write grant to everything; the granted
    /// ones for a read+write grant by category; none otherwise.
    function _writableCategories(address author, address patient) private view returns (uint256) {
        if (author == patient) return ALL_CATEGORIES;
        Grant memory g = _grants[patient][author];
        if (!g.write || _grantError(g, author) != 0) return 0;
        if (g.scope == SCOPE_EVERYTHING) return ALL_CATEGORIES;
        return g.scope == SCOPE_CATEGORIES ? g.categories : 0;
    }
}
