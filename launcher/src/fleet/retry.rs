//! Every retry and wait of the fleet, bounded and counted here, in one
//! place: how many tries each kind of step gets, how long it waits between
//! them, and how long a node may keep the fleet following it. A node that
//! keeps answering "try again" (an upload it says it completed but never
//! has, a session refused forever, a gate that runs forever) uses up its
//! tries and is reported; it never holds the fleet in a loop.

use std::thread;
use std::time::Duration;

/// How often a kind of step is tried, and the waits between the tries.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub tries: u32,
    first: Duration,
    max: Duration,
}

/// The master connection (three tries: a node that cannot be reached is
/// reported, the rest of the fleet goes on).
pub const CONNECT: Policy = Policy {
    tries: 3,
    first: Duration::from_secs(1),
    max: Duration::from_secs(4),
};

/// A command whose link broke: reconnect and run it again.
pub const COMMAND: Policy = Policy {
    tries: 6,
    first: Duration::from_secs(1),
    max: Duration::from_secs(15),
};

/// Starting a detached run (each failed try first asks whether it started).
pub const START: Policy = COMMAND;

/// The upload: every look at the node's copy, every chunk pass and every
/// move into place counts, so a node that answers "part complete, moved"
/// without ever holding the file uses the tries up.
pub const UPLOAD: Policy = Policy {
    tries: 12,
    first: Duration::from_secs(1),
    max: Duration::from_secs(30),
};

/// A session sshd refused on a live master (MaxSessions): asked again on
/// the same master, soon.
pub const REFUSED_SESSION: Policy = Policy {
    tries: 20,
    first: Duration::from_millis(50),
    max: Duration::from_secs(1),
};

/// Following a detached run: how long one `wait` on the node may block
/// before it answers anyway (well inside `SESSION`, so a quiet gate never
/// looks like a node that trickles), and how soon an answer without news
/// means the node did not wait (then the fleet pauses, as `COMMAND` does).
pub const FOLLOW_WAIT: Duration = Duration::from_secs(60);
pub const FOLLOW_QUICK_ANSWER: Duration = Duration::from_secs(1);
/// How long a node may stay unreachable while its gate runs.
pub const LOST_AFTER: Duration = Duration::from_secs(30 * 60);
/// How long a gate may keep running, per iteration, before the fleet stops
/// following it: a node that answers "running" forever is not waited for
/// forever.
pub const RUN_PER_ITERATION: Duration = Duration::from_secs(2 * 60 * 60);

/// One session's longest life: a node that trickles its answer (alive
/// enough for ServerAlive) is cut off here.
pub const SESSION: Duration = Duration::from_secs(10 * 60);
/// The fetch of a run dir (up to `answer::RUN_DIR_BYTES` over a slow link).
pub const FETCH_SESSION: Duration = Duration::from_secs(30 * 60);

impl Policy {
    pub fn start(self) -> Tries {
        Tries {
            policy: self,
            made: 0,
            wait: self.first,
        }
    }
}

/// The tries of one step, as they are used.
#[derive(Debug)]
pub struct Tries {
    policy: Policy,
    made: u32,
    wait: Duration,
}

impl Tries {
    /// Counts a try: false when none are left.
    pub fn next(&mut self) -> bool {
        if self.made >= self.policy.tries {
            return false;
        }
        self.made += 1;
        true
    }

    /// Tries made so far.
    pub fn made(&self) -> u32 {
        self.made
    }

    /// Whether another try is left.
    pub fn left(&self) -> bool {
        self.made < self.policy.tries
    }

    /// Waits before the next try; each wait doubles, up to the policy's most.
    pub fn pause(&mut self) {
        thread::sleep(self.wait);
        self.wait = (self.wait * 2).min(self.policy.max);
    }

    /// Progress was made: the next wait is the first one again.
    pub fn progressed(&mut self) {
        self.wait = self.policy.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tries_run_out() {
        let mut tries = Policy {
            tries: 3,
            first: Duration::ZERO,
            max: Duration::ZERO,
        }
        .start();
        let mut n = 0;
        while tries.next() {
            n += 1;
            tries.pause();
        }
        assert_eq!((n, tries.made(), tries.left()), (3, 3, false));
    }
}
