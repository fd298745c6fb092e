//! Following a ledger's heads from outside it: a browser (or any witness)
//! remembers the last block it verified, and accepts a newer head only if
//! the chain of parent hashes leads from that block to it. With the
//! embedded ledger the server could rebuild a different history; this is
//! how someone who looked before notices.

/// A block as a witness sees it: number, hash, parent's hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub number: u64,
    pub hash: [u8; 32],
    pub parent: [u8; 32],
}

/// Why newer heads do not extend the block verified before.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Break {
    #[error("the ledger went back from block {last} to block {now}")]
    WentBack { last: u64, now: u64 },
    #[error("block {number} is not the block seen there before")]
    Replaced { number: u64 },
    #[error("block {number} does not follow the block before it")]
    Unlinked { number: u64 },
    #[error("the blocks after {after} were not all given")]
    Missing { after: u64 },
}

/// Checks that `heads`, consecutive from `last`'s number (that block
/// included) up to the chain's `head`, extend `last`: the first is the same
/// block, each next names the one before as its parent. Returns the newest
/// block, now verified.
pub fn extend(last: (u64, [u8; 32]), head: u64, heads: &[Head]) -> Result<(u64, [u8; 32]), Break> {
    let (number, hash) = last;
    if head < number {
        return Err(Break::WentBack { last: number, now: head });
    }
    let first = heads.first().ok_or(Break::Missing { after: number })?;
    if first.number != number || first.hash != hash {
        return Err(Break::Replaced { number });
    }
    let mut previous = *first;
    for h in &heads[1..] {
        if h.number != previous.number + 1 {
            return Err(Break::Missing { after: previous.number });
        }
        if h.parent != previous.hash {
            return Err(Break::Unlinked { number: h.number });
        }
        previous = *h;
    }
    Ok((previous.number, previous.hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(len: u64, fork_at: Option<u64>) -> Vec<Head> {
        let mut out: Vec<Head> = Vec::new();
        for n in 0..len {
            let parent = out.last().map(|h| h.hash).unwrap_or([0; 32]);
            let mut hash = [n as u8 + 1; 32];
            if fork_at.is_some_and(|f| n >= f) {
                hash[0] = 0xee;
            }
            out.push(Head { number: n, hash, parent });
        }
        out
    }

    #[test]
    fn a_longer_chain_extends_what_was_seen() {
        let c = chain(10, None);
        assert_eq!(extend((3, c[3].hash), 9, &c[3..]), Ok((9, c[9].hash)));
        assert_eq!(extend((9, c[9].hash), 9, &c[9..]), Ok((9, c[9].hash)), "nothing new");
    }

    #[test]
    fn a_rewritten_or_broken_chain_is_caught() {
        let c = chain(10, None);
        let fork = chain(10, Some(3));
        assert_eq!(extend((5, c[5].hash), 9, &fork[5..]), Err(Break::Replaced { number: 5 }));
        assert_eq!(extend((5, c[5].hash), 4, &[]), Err(Break::WentBack { last: 5, now: 4 }));
        assert_eq!(extend((5, c[5].hash), 9, &[]), Err(Break::Missing { after: 5 }));
        let mut gap = c[5..].to_vec();
        gap.remove(2);
        assert_eq!(extend((5, c[5].hash), 9, &gap), Err(Break::Missing { after: 6 }));
        let mut unlinked = c[5..].to_vec();
        unlinked[3].parent = [9; 32];
        assert_eq!(extend((5, c[5].hash), 9, &unlinked), Err(Break::Unlinked { number: 8 }));
    }
}
