//! Container names: validation and Docker-style generated names (`adjective_surname`).

use super::Containers;
use crate::error::ServiceError;
use rand::seq::SliceRandom;

const LEFT: &[&str] = &[
    "admiring", "brave", "clever", "dazzling", "eager", "focused", "gallant", "happy", "jolly",
    "keen", "lucid", "modest", "nifty", "quirky", "relaxed", "serene", "sharp", "tender", "upbeat",
    "vigilant", "wizardly", "zealous",
];
const RIGHT: &[&str] = &[
    "albattani",
    "bardeen",
    "curie",
    "darwin",
    "euclid",
    "fermi",
    "galileo",
    "hopper",
    "kepler",
    "lovelace",
    "meitner",
    "newton",
    "noether",
    "pasteur",
    "ritchie",
    "shannon",
    "thompson",
    "turing",
    "wozniak",
    "yalow",
];

/// Whether `name` is a valid container name (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`).
pub fn valid(name: &str) -> bool {
    let n = name.trim_start_matches('/');
    let mut chars = n.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && n.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// A random name.
pub fn generate() -> String {
    let mut rng = rand::thread_rng();
    format!(
        "{}_{}",
        LEFT.choose(&mut rng).unwrap_or(&"brave"),
        RIGHT.choose(&mut rng).unwrap_or(&"turing")
    )
}

/// Docker's conflict when another container than `except` (an id) is named `name` (without
/// the slash). Checked, and the name then taken, under [`Containers::names`].
pub fn taken(containers: &Containers, name: &str, except: &str) -> Option<ServiceError> {
    let other = containers.get(name).ok()?;
    (other.name() == name && other.id != except).then(|| {
        ServiceError::conflict(format!(
            "Conflict. The container name \"/{name}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
            other.id
        ))
    })
}
