//! Container names: validation, Docker-style generated names (`adjective_surname`), and the
//! reservation a create makes before anything else is set up.
//!
//! Generation is bounded as dockerd's: a few random names (from the second on with a random
//! digit appended), then the container's short id — never a loop that waits for a free name
//! (with 22 × 20 names and no bound, the 441st unnamed container spun forever).

use super::Containers;
use crate::error::ServiceError;
use rand::seq::SliceRandom;
use rand::Rng;

const LEFT: &[&str] = &[
    "admiring",
    "agile",
    "amazing",
    "awesome",
    "blissful",
    "bold",
    "brave",
    "busy",
    "calm",
    "careful",
    "charming",
    "cheerful",
    "clever",
    "cool",
    "curious",
    "dazzling",
    "determined",
    "eager",
    "elastic",
    "elegant",
    "epic",
    "fervent",
    "focused",
    "friendly",
    "gallant",
    "gentle",
    "gifted",
    "happy",
    "hopeful",
    "humble",
    "inspiring",
    "jolly",
    "jovial",
    "keen",
    "kind",
    "laughing",
    "loving",
    "lucid",
    "magical",
    "modest",
    "musing",
    "nifty",
    "nimble",
    "optimistic",
    "patient",
    "peaceful",
    "practical",
    "priceless",
    "quirky",
    "relaxed",
    "romantic",
    "serene",
    "sharp",
    "silly",
    "sleepy",
    "stoic",
    "sweet",
    "tender",
    "thirsty",
    "trusting",
    "upbeat",
    "vibrant",
    "vigilant",
    "wizardly",
    "wonderful",
    "youthful",
    "zealous",
    "zen",
];
const RIGHT: &[&str] = &[
    "agnesi",
    "albattani",
    "archimedes",
    "babbage",
    "banach",
    "bardeen",
    "bell",
    "bhabha",
    "bohr",
    "boole",
    "bose",
    "cannon",
    "carson",
    "cerf",
    "chandrasekhar",
    "curie",
    "darwin",
    "dijkstra",
    "dirac",
    "einstein",
    "euclid",
    "euler",
    "faraday",
    "fermat",
    "fermi",
    "feynman",
    "franklin",
    "galileo",
    "gauss",
    "goodall",
    "hamilton",
    "hawking",
    "heisenberg",
    "hertz",
    "hodgkin",
    "hopper",
    "hubble",
    "hypatia",
    "joliot",
    "kepler",
    "knuth",
    "lamarr",
    "lamport",
    "leavitt",
    "lovelace",
    "maxwell",
    "meitner",
    "mendel",
    "mirzakhani",
    "morse",
    "napier",
    "newton",
    "nobel",
    "noether",
    "pascal",
    "pasteur",
    "planck",
    "ramanujan",
    "ritchie",
    "rosalind",
    "sagan",
    "shannon",
    "somerville",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "volta",
    "wilson",
    "wozniak",
    "wright",
    "yalow",
    "yonath",
];

/// How many random names a create tries before it takes its short id.
const TRIES: usize = 6;

/// Whether `name` is a valid container name (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`).
pub fn valid(name: &str) -> bool {
    let n = name.trim_start_matches('/');
    let mut chars = n.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && n.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// A random name; from the second try (`retry` > 0) on with a random digit appended.
pub fn generate(retry: usize) -> String {
    let mut rng = rand::thread_rng();
    let mut name = format!(
        "{}_{}",
        LEFT.choose(&mut rng).unwrap_or(&"brave"),
        RIGHT.choose(&mut rng).unwrap_or(&"turing")
    );
    if retry > 0 {
        name.push(char::from(b'0' + rng.gen_range(0..10u8)));
    }
    name
}

/// A name reserved for a container being created; freed again when dropped unless
/// [`Reserved::keep`] says the container was recorded (so a failed or abandoned create
/// leaves its name free).
pub struct Reserved<'a> {
    containers: &'a Containers,
    name: String,
    id: String,
    kept: bool,
}

impl<'a> Reserved<'a> {
    /// Reserves `name` (without its `/`) for `id`: Docker's conflict if another holds it.
    pub fn name(containers: &'a Containers, name: &str, id: &str) -> Result<Self, ServiceError> {
        containers.reserve_name(name, id)?;
        Ok(Reserved {
            containers,
            name: name.to_string(),
            id: id.to_string(),
            kept: false,
        })
    }

    /// Picks a free generated name for `id` and reserves it: a few random ones, then the
    /// short id, as dockerd; a clear conflict if even that is taken.
    pub fn generated(containers: &'a Containers, id: &str) -> Result<Self, ServiceError> {
        for retry in 0..TRIES {
            if let Ok(r) = Self::name(containers, &generate(retry), id) {
                return Ok(r);
            }
        }
        Self::name(containers, &id[..id.len().min(12)], id)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The container holding the name is recorded: the name stays taken.
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        if !self.kept {
            self.containers.release_name(&self.name, &self.id);
        }
    }
}

/// Docker's conflict when `name` (without the slash) is held by the container `holder`.
pub fn conflict(name: &str, holder: &str) -> ServiceError {
    ServiceError::conflict(format!(
        "Conflict. The container name \"/{name}\" is already in use by container \"{holder}\". You have to remove (or rename) that container to be able to reuse that name."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_are_valid_and_retries_carry_a_digit() {
        for retry in 0..3 {
            let n = generate(retry);
            assert!(valid(&n), "{n}");
            assert_eq!(n.ends_with(|c: char| c.is_ascii_digit()), retry > 0, "{n}");
        }
        // Far more names than the 1,000 containers a node is expected to hold.
        assert!(LEFT.len() * RIGHT.len() >= 4000);
    }
}
