//! Merkle trees as in RFC 6962 / RFC 9162 (Certificate Transparency): a
//! bulk import anchors one root for all its records, and each record keeps
//! its inclusion proof.
//!
//! Leaf hash `SHA-256(0x00 || leaf)`, node hash `SHA-256(0x01 || left ||
//! right)`; a tree of n leaves splits at the largest power of two below n.
//! Built bottom-up here (an odd last node moves up unhashed), which gives
//! the same root and audit paths as the recursive definition.

use sha2::{Digest, Sha256};

use crate::envelope::RecordId;

pub type Hash = [u8; 32];

pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf);
    h.finalize().into()
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The leaf of one record in a batch: `record id || ciphertext hash ||
/// category || amended record id (or zero)`, 97 bytes. The same fields a
/// single anchor puts on the ledger.
pub fn record_leaf(record_id: RecordId, ciphertext_hash: &Hash, category: u8, amends: Option<RecordId>) -> [u8; 97] {
    let mut leaf = [0u8; 97];
    leaf[..32].copy_from_slice(&record_id.0);
    leaf[32..64].copy_from_slice(ciphertext_hash);
    leaf[64] = category;
    if let Some(amends) = amends {
        leaf[65..].copy_from_slice(&amends.0);
    }
    leaf
}

/// A whole tree, kept level by level so every proof is a walk up.
#[derive(Debug, Clone)]
pub struct Tree {
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    /// Builds the tree over leaf hashes. `None` for no leaves: an empty
    /// batch is never anchored.
    pub fn from_leaf_hashes(leaves: Vec<Hash>) -> Option<Self> {
        if leaves.is_empty() {
            return None;
        }
        let mut levels = vec![leaves];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let below = levels.last().expect("non-empty");
            let above = below
                .chunks(2)
                .map(|pair| match pair {
                    [left, right] => node_hash(left, right),
                    [odd] => *odd,
                    _ => unreachable!("chunks of two"),
                })
                .collect();
            levels.push(above);
        }
        Some(Self { levels })
    }

    pub fn len(&self) -> usize {
        self.levels[0].len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn root(&self) -> Hash {
        self.levels.last().expect("at least one level")[0]
    }

    /// The audit path of leaf `index`, from the leaf's sibling upwards.
    pub fn proof(&self, index: usize) -> Option<Vec<Hash>> {
        if index >= self.len() {
            return None;
        }
        let mut path = Vec::new();
        let mut i = index;
        for level in &self.levels[..self.levels.len() - 1] {
            let sibling = i ^ 1;
            if sibling < level.len() {
                path.push(level[sibling]);
            }
            i >>= 1;
        }
        Some(path)
    }
}

/// Checks that `leaf_hash` is leaf `index` of a tree of `size` leaves with
/// this `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf_hash: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6962 §2.1, recursively.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            1 => leaves[0],
            n => {
                let k = split(n);
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    /// RFC 6962 §2.1.1 PATH(m, D[n]).
    fn path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
        let n = leaves.len();
        if n == 1 {
            return vec![];
        }
        let k = split(n);
        if m < k {
            let mut p = path(m, &leaves[..k]);
            p.push(mth(&leaves[k..]));
            p
        } else {
            let mut p = path(m - k, &leaves[k..]);
            p.push(mth(&leaves[..k]));
            p
        }
    }

    fn split(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&(i as u32).to_be_bytes())).collect()
    }

    #[test]
    fn matches_the_recursive_definition_and_verifies() {
        for n in 1..=70 {
            let l = leaves(n);
            let tree = Tree::from_leaf_hashes(l.clone()).expect("non-empty");
            assert_eq!(tree.root(), mth(&l), "root of {n}");
            for m in 0..n {
                let proof = tree.proof(m).expect("in range");
                assert_eq!(proof, path(m, &l), "path {m} of {n}");
                assert!(verify_inclusion(m as u64, n as u64, &l[m], &proof, &tree.root()));
            }
            assert!(tree.proof(n).is_none());
        }
    }

    #[test]
    fn rejects_wrong_leaf_index_size_proof_or_root() {
        let l = leaves(13);
        let tree = Tree::from_leaf_hashes(l.clone()).expect("non-empty");
        let root = tree.root();
        let proof = tree.proof(5).expect("in range");
        assert!(verify_inclusion(5, 13, &l[5], &proof, &root));
        assert!(!verify_inclusion(5, 13, &l[6], &proof, &root), "another leaf");
        assert!(!verify_inclusion(4, 13, &l[5], &proof, &root), "another index");
        // A size that changes the path's shape fails. (One that keeps it, 12
        // or 14 here, cannot be told apart by the path: the ledger's count
        // is checked separately.)
        assert!(!verify_inclusion(5, 6, &l[5], &proof, &root), "another size");
        assert!(!verify_inclusion(5, 40, &l[5], &proof, &root), "another size");
        assert!(!verify_inclusion(13, 13, &l[5], &proof, &root), "index out of range");
        assert!(!verify_inclusion(5, 13, &l[5], &proof[..proof.len() - 1], &root), "short proof");
        let mut long = proof.clone();
        long.push(root);
        assert!(!verify_inclusion(5, 13, &l[5], &long, &root), "long proof");
        let mut flipped = proof.clone();
        flipped[1][0] ^= 1;
        assert!(!verify_inclusion(5, 13, &l[5], &flipped, &root), "altered proof");
        assert!(!verify_inclusion(5, 13, &l[5], &proof, &[0; 32]), "another root");
        // A leaf hash cannot pose as an inner node (domain separation).
        assert_ne!(leaf_hash(&[node_hash(&l[0], &l[1]), l[2]].concat()), node_hash(&node_hash(&l[0], &l[1]), &l[2]));
    }

    #[test]
    fn single_leaf_tree_and_empty() {
        let l = leaves(1);
        let tree = Tree::from_leaf_hashes(l.clone()).expect("non-empty");
        assert_eq!(tree.root(), l[0]);
        assert_eq!(tree.proof(0), Some(vec![]));
        assert!(verify_inclusion(0, 1, &l[0], &[], &l[0]));
        assert!(Tree::from_leaf_hashes(vec![]).is_none());
    }

    /// RFC 6962's leaf hash of the empty string.
    #[test]
    fn known_answers() {
        assert_eq!(hex::encode(leaf_hash(b"")), "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
    }
}
