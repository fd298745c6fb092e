//! The Access contract against revm: SMART Health Links (created, changed,
//! stopped and used only while live) and emergency contacts (request, wait,
//! refusal, access), with the refusals the trust model names.

mod common;

use chartkey_core::AccountKeys;
use chartkey_core::eip712::{
    Domain, EmergencyAccess, EmergencyContact, EmergencyContactRemove, EmergencyRefusal, EmergencyRequest, FLAG_DIRECT,
    FLAG_LONG_TERM, FLAG_PASSCODE, Link, LinkRevoke, LinkUpdate,
};
use chartkey_ledger::artifacts::{access, directory};
use chartkey_ledger::calls::{self, LinkUse, SignedCall, Target};
use chartkey_ledger::{Chain, Receipt, TxError};
use common::{CHAIN_ID, DAY, Deployed, START, keys, reason, register};
use ethers_core::abi::Token;
use ethers_core::types::{Address, U256};

const HOUR: u64 = 3_600;
/// The host the links name (the address that logs their uses).
const HOST: Address = ethers_core::types::H160([0x77; 20]);

/// Directory and Access contracts; keys(1) a patient, keys(2) a clinician
/// (no credential needed), keys(3) another patient; keys(9) unregistered.
struct Ledger {
    chain: Chain,
    directory: Address,
    access: Address,
    relayer: Address,
    /// Uses logged so far (each gets its own id).
    uses: u64,
}

impl Ledger {
    fn new() -> Self {
        let mut d = Deployed::directory();
        let access_at = d.beside(access());
        let mut l = Self { chain: d.chain, directory: d.directory, access: access_at, relayer: d.relayer, uses: 0 };
        for (n, role) in [(1u8, 1u8), (2, 2), (3, 1)] {
            let who = keys(n);
            let message = register(&who, role, U256::zero());
            let signature = Domain::directory(CHAIN_ID, l.directory).sign(&who, &message);
            let (relayer, to) = (l.relayer, l.directory);
            l.chain.send(relayer, to, directory(), "register", &calls::arguments(&message, signature)).unwrap();
        }
        l
    }

    fn signed<M: SignedCall>(&mut self, signer: &AccountKeys, message: &M) -> Result<Receipt, TxError> {
        assert_eq!(M::TARGET, Target::Access);
        let signature = Domain::access(CHAIN_ID, self.access).sign(signer, message);
        let (relayer, to) = (self.relayer, self.access);
        self.chain.send(relayer, to, access(), M::FUNCTION, &calls::arguments(message, signature))
    }

    fn use_link(&mut self, patient: &AccountKeys, link_id: [u8; 32], recipient: &str) -> Result<Receipt, TxError> {
        self.uses += 1;
        let call = LinkUse {
            patient: patient.address(),
            link_id,
            recipient_hash: ethers_core::utils::keccak256(recipient.as_bytes()),
            use_id: ethers_core::utils::keccak256(self.uses.to_be_bytes()),
        };
        let to = self.access;
        self.chain.send(HOST, to, access(), LinkUse::FUNCTION, &call.arguments())
    }

    fn view(&mut self, function: &str, args: &[Token]) -> Vec<Token> {
        let to = self.access;
        self.chain.call(to, access(), function, args).unwrap()
    }

    /// (exists, flags, expiresAt, serial, uses, revoked); the host is checked by its own test.
    fn link_of(&mut self, patient: &AccountKeys, link_id: [u8; 32]) -> (bool, u64, u64, u64, u64, bool) {
        let t = self.view("linkOf", &[Token::Address(patient.address()), Token::FixedBytes(link_id.to_vec())]);
        let n = |i: usize| t[i].clone().into_uint().unwrap().as_u64();
        (t[0].clone().into_bool().unwrap(), n(1), n(2), n(3), n(4), t[5].clone().into_bool().unwrap())
    }

    /// (active, waitSeconds, serial, requestedAt, availableAt)
    fn contact_of(&mut self, patient: &AccountKeys, contact: &AccountKeys) -> (bool, u64, U256, u64, u64) {
        let t = self.view("contactOf", &[Token::Address(patient.address()), Token::Address(contact.address())]);
        let n = |i: usize| t[i].clone().into_uint().unwrap().as_u64();
        (t[0].clone().into_bool().unwrap(), n(1), t[2].clone().into_uint().unwrap(), n(3), n(4))
    }

    fn nonce(&mut self, who: &AccountKeys) -> U256 {
        self.view("nonces", &[Token::Address(who.address())])[0].clone().into_uint().unwrap()
    }

    fn link(&self, patient: &AccountKeys, id: u8, expires_at: u64, flags: u8) -> Link {
        Link { patient: patient.address(), link_id: [id; 32], content_hash: [0xc0; 32], expires_at, flags, host: HOST }
    }
}

/// The event `name` in `receipt`, as (field, value) pairs.
fn event(receipt: &Receipt, name: &str) -> Vec<(String, Token)> {
    let event = access().abi.event(name).unwrap();
    let log = receipt.logs.iter().find(|l| l.topics[0] == event.signature()).unwrap_or_else(|| panic!("no {name}"));
    event.parse_log(log.clone()).unwrap().params.into_iter().map(|p| (p.name, p.value)).collect()
}

fn field(fields: &[(String, Token)], name: &str) -> Token {
    fields.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no field {name}")).1.clone()
}

#[test]
fn a_link_is_used_only_while_live_and_each_use_is_logged() {
    let mut l = Ledger::new();
    let (patient, other) = (keys(1), keys(3));
    let link = l.link(&patient, 1, START + DAY, FLAG_PASSCODE);
    let created = l.signed(&patient, &link).unwrap();
    let fields = event(&created, "LinkCreated");
    assert_eq!(field(&fields, "contentHash"), Token::FixedBytes(vec![0xc0; 32]));
    assert_eq!(l.link_of(&patient, [1; 32]), (true, u64::from(FLAG_PASSCODE), START + DAY, 0, 0, false));

    let first = l.use_link(&patient, [1; 32], "Dr Rao, Mercy ER").unwrap();
    let fields = event(&first, "LinkUsed");
    let label_hash = ethers_core::utils::keccak256(b"Dr Rao, Mercy ER").to_vec();
    assert_eq!(field(&fields, "recipientHash"), Token::FixedBytes(label_hash), "a hash, never the label");
    assert_eq!(field(&fields, "uses"), Token::Uint(1.into()));
    assert_ne!(field(&fields, "useId"), Token::FixedBytes(vec![0; 32]));
    l.use_link(&patient, [1; 32], "Dr Rao, Mercy ER").unwrap();
    assert_eq!(l.link_of(&patient, [1; 32]).4, 2);

    // Only the host the patient named logs uses.
    let call = LinkUse { patient: patient.address(), link_id: [1; 32], recipient_hash: [1; 32], use_id: [1; 32] };
    let (stranger, to) = (Address::repeat_byte(0x99), l.access);
    let refused = l.chain.send(stranger, to, access(), LinkUse::FUNCTION, &call.arguments());
    assert_eq!(reason(refused), format!("NotHost({stranger:?})"));
    let host = l.view("linkOf", &[Token::Address(patient.address()), Token::FixedBytes(vec![1; 32])])[6].clone();
    assert_eq!(host, Token::Address(HOST));

    // Links are the patient's: another patient's id space is separate.
    assert_eq!(reason(l.use_link(&other, [1; 32], "x")), format!("UnknownLink(0x{})", hex::encode([1; 32])));
    // A link is created once.
    assert!(reason(l.signed(&patient, &link)).starts_with("LinkExists("));

    // Past its expiry, no use is logged.
    l.chain.advance_time(DAY);
    assert!(reason(l.use_link(&patient, [1; 32], "late")).starts_with("LinkExpired("));
}

#[test]
fn only_a_registered_patient_makes_links_with_sound_fields() {
    let mut l = Ledger::new();
    let (patient, clinician) = (keys(1), keys(2));
    let by_clinician = l.link(&clinician, 1, 0, 0);
    assert_eq!(reason(l.signed(&clinician, &by_clinician)), format!("NotPatient({:?})", clinician.address()));
    let unsigned = l.link(&patient, 1, 0, 0);
    assert!(reason(l.signed(&clinician, &unsigned)).starts_with("WrongSigner("));
    assert_eq!(reason(l.signed(&patient, &l.link(&patient, 1, 0, FLAG_PASSCODE | FLAG_DIRECT))), "BadFlags(6)");
    assert_eq!(reason(l.signed(&patient, &l.link(&patient, 1, 0, 8))), "BadFlags(8)");
    assert!(reason(l.signed(&patient, &l.link(&patient, 0, 0, 0))).starts_with("ZeroId"));
    let no_host = Link { host: Address::zero(), ..l.link(&patient, 1, 0, 0) };
    assert!(reason(l.signed(&patient, &no_host)).starts_with("ZeroId"));
    assert!(reason(l.signed(&patient, &l.link(&patient, 1, START, 0))).starts_with("ExpiryInPast("));
    assert!(reason(l.signed(&patient, &l.link(&patient, 1, START + 367 * DAY, 0))).starts_with("ExpiryTooFar("));
    // No expiry, and a direct-file link without passcode, are fine.
    l.signed(&patient, &l.link(&patient, 1, 0, FLAG_DIRECT)).unwrap();
    l.chain.advance_time(400 * DAY);
    l.use_link(&patient, [1; 32], "years later").unwrap();
}

#[test]
fn links_change_by_their_serial_and_stop_at_once() {
    let mut l = Ledger::new();
    let patient = keys(1);
    l.signed(&patient, &l.link(&patient, 1, START + HOUR, 0)).unwrap();
    l.signed(&patient, &l.link(&patient, 2, START + HOUR, FLAG_LONG_TERM)).unwrap();
    let update = |id: u8, content: u8, expires_at: u64, nonce: u64| LinkUpdate {
        patient: patient.address(),
        link_id: [id; 32],
        content_hash: [content; 32],
        expires_at,
        nonce: nonce.into(),
    };

    // Only a long-term link's content changes; any live link's expiry does.
    assert_eq!(
        reason(l.signed(&patient, &update(1, 0xc1, START + HOUR, 0))),
        format!("NotLongTerm(0x{})", "01".repeat(32))
    );
    l.signed(&patient, &update(1, 0, START + DAY, 0)).unwrap();
    let changed = l.signed(&patient, &update(2, 0xc1, 0, 0)).unwrap();
    let fields = event(&changed, "LinkUpdated");
    assert_eq!(field(&fields, "serial"), Token::Uint(1.into()));
    assert_eq!(field(&fields, "contentHash"), Token::FixedBytes(vec![0xc1; 32]));
    // A signed update is spent once.
    assert!(reason(l.signed(&patient, &update(2, 0xc2, 0, 0))).starts_with("InvalidAccountNonce("));
    assert!(reason(l.signed(&keys(3), &update(2, 0xc2, 0, 1))).starts_with("WrongSigner("));
    l.chain.advance_time(2 * HOUR);
    l.use_link(&patient, [1; 32], "extended").unwrap();

    let revoke = LinkRevoke { patient: patient.address(), link_id: [2; 32], nonce: 1.into() };
    l.signed(&patient, &revoke).unwrap();
    assert!(reason(l.use_link(&patient, [2; 32], "after")).starts_with("LinkIsRevoked("));
    assert!(reason(l.signed(&patient, &update(2, 0xc3, 0, 2))).starts_with("LinkIsRevoked("));
    let again = LinkRevoke { nonce: 2.into(), ..revoke };
    assert!(reason(l.signed(&patient, &again)).starts_with("LinkIsRevoked("));
    assert!(l.link_of(&patient, [2; 32]).5, "revoked");
}

#[test]
fn an_emergency_request_opens_after_the_wait_unless_the_patient_refuses() {
    let mut l = Ledger::new();
    let (patient, contact) = (keys(1), keys(2));
    let (p, c) = (patient.address(), contact.address());
    let set = EmergencyContact { patient: p, contact: c, wait_seconds: (2 * DAY) as u32, nonce: 0.into() };
    let named = l.signed(&patient, &set).unwrap();
    assert_eq!(field(&event(&named, "EmergencyContactSet"), "waitSeconds"), Token::Uint((2 * DAY).into()));
    assert_eq!(l.contact_of(&patient, &contact), (true, 2 * DAY, 1.into(), 0, 0));

    let request = |l: &mut Ledger| EmergencyRequest { contact: c, patient: p, nonce: l.nonce(&contact) };
    let open = |l: &mut Ledger| EmergencyAccess { contact: c, patient: p, nonce: l.nonce(&contact) };

    // Request → the patient refuses during the wait → nothing opens.
    let message = request(&mut l);
    let asked = l.signed(&contact, &message).unwrap();
    let available = START + 2 * DAY;
    assert_eq!(field(&event(&asked, "EmergencyRequested"), "availableAt"), Token::Uint(available.into()));
    let message = open(&mut l);
    assert_eq!(reason(l.signed(&contact, &message)), format!("StillWaiting({p:?}, {c:?}, {available})"));
    let message = request(&mut l);
    assert!(reason(l.signed(&contact, &message)).starts_with("RequestOpen("), "one request at a time");
    l.chain.advance_time(DAY);
    let refusal = EmergencyRefusal { patient: p, contact: c, nonce: 1.into() };
    l.signed(&patient, &refusal).unwrap();
    l.chain.advance_time(2 * DAY);
    let message = open(&mut l);
    assert_eq!(reason(l.signed(&contact, &message)), format!("NoRequest({p:?}, {c:?})"));

    // Request → the wait passes → each access is logged.
    let message = request(&mut l);
    l.signed(&contact, &message).unwrap();
    l.chain.advance_time(2 * DAY - 1);
    let message = open(&mut l);
    assert!(reason(l.signed(&contact, &message)).starts_with("StillWaiting("));
    l.chain.advance_time(1);
    let message = open(&mut l);
    let opened = l.signed(&contact, &message).unwrap();
    assert_eq!(field(&event(&opened, "EmergencyAccessed"), "contact"), Token::Address(c));
    // The signed access is spent once.
    assert!(reason(l.signed(&contact, &message)).starts_with("InvalidAccountNonce("));

    // A refusal after the wait ends the access; removing the contact ends everything.
    let refusal = EmergencyRefusal { patient: p, contact: c, nonce: 2.into() };
    l.signed(&patient, &refusal).unwrap();
    let message = open(&mut l);
    assert!(reason(l.signed(&contact, &message)).starts_with("NoRequest("));
    let message = request(&mut l);
    l.signed(&contact, &message).unwrap();
    let remove = EmergencyContactRemove { patient: p, contact: c, nonce: 3.into() };
    l.signed(&patient, &remove).unwrap();
    l.chain.advance_time(3 * DAY);
    let message = open(&mut l);
    assert_eq!(reason(l.signed(&contact, &message)), format!("NotContact({p:?}, {c:?})"));
    let message = request(&mut l);
    assert!(reason(l.signed(&contact, &message)).starts_with("NotContact("));
}

#[test]
fn emergency_contacts_are_named_by_the_patient_only() {
    let mut l = Ledger::new();
    let (patient, contact, stranger) = (keys(1), keys(2), keys(9));
    let (p, c) = (patient.address(), contact.address());
    let set = EmergencyContact { patient: p, contact: c, wait_seconds: 0, nonce: 0.into() };
    assert!(reason(l.signed(&contact, &set)).starts_with("WrongSigner("), "a contact cannot name itself");
    let to_self = EmergencyContact { contact: p, ..set.clone() };
    assert_eq!(reason(l.signed(&patient, &to_self)), "SelfContact()");
    let unregistered = EmergencyContact { contact: stranger.address(), ..set.clone() };
    assert_eq!(reason(l.signed(&patient, &unregistered)), format!("NotRegistered({:?})", stranger.address()));
    let too_long = EmergencyContact { wait_seconds: 7 * 86_400 + 1, ..set.clone() };
    assert_eq!(reason(l.signed(&patient, &too_long)), "WaitTooLong(604801)");
    let by_clinician = EmergencyContact { patient: c, contact: p, ..set.clone() };
    assert_eq!(reason(l.signed(&contact, &by_clinician)), format!("NotPatient({c:?})"));
    // No request before being named; a wait of zero opens at once.
    let request = EmergencyRequest { contact: c, patient: p, nonce: 0.into() };
    assert!(reason(l.signed(&contact, &request)).starts_with("NotContact("));
    l.signed(&patient, &set).unwrap();
    assert!(reason(l.signed(&patient, &set)).starts_with("InvalidAccountNonce("), "spent");
    l.signed(&contact, &request).unwrap();
    l.signed(&contact, &EmergencyAccess { contact: c, patient: p, nonce: 1.into() }).unwrap();
}
