//! Specs in messages without their passwords.

/// The spec with the password of a URL's user info replaced by `***`, for messages
/// and logs: `postgres://app:s3cret@db/x` becomes `postgres://app:***@db/x`.
///
/// ```
/// assert_eq!(sessio_spec::redact("redis://:pw@h:6379/0"), "redis://:***@h:6379/0");
/// assert_eq!(sessio_spec::redact("redb:/var/s.redb"), "redb:/var/s.redb");
/// ```
pub fn redact(spec: &str) -> String {
    let Some((scheme, rest)) = spec.split_once("://") else {
        return spec.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return spec.to_owned();
    };
    let userinfo = &authority[..at];
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***{}", &rest[at..]),
        None => spec.to_owned(),
    }
}
