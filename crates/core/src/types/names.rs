//! The rules names and codes follow where AWS and Kubernetes define them: EKS cluster names,
//! region codes, S3 bucket names and Kubernetes object names. The workflow's validation and the
//! command line both check with these, so a name is refused with the same words wherever it is
//! written, before any call is made.

/// What is wrong with a name, and the rule it breaks (for a `help:` or `hint:` line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameProblem {
    /// Why this value is not allowed, without the value: `it has an uppercase letter`.
    pub why: Option<String>,
    /// The rule in one sentence.
    pub rule: &'static str,
}

pub const CLUSTER_RULE: &str =
    "EKS cluster names are 1 to 100 letters, digits, `-` and `_`, starting with a letter or digit";
pub const REGION_RULE: &str = "write a region code such as `eu-west-1` or `us-east-1`";
pub const BUCKET_RULE: &str = "S3 bucket names are 3 to 63 lowercase letters, digits, `.` and `-`, starting and ending with a letter or digit";
pub const OBJECT_RULE: &str = "Kubernetes object names are at most 253 lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit";

/// EKS's rule for a cluster name (`CreateCluster`'s `name`: `^[0-9A-Za-z][A-Za-z0-9\-_]*`, 1 to
/// 100 characters).
pub fn eks_cluster_name(s: &str) -> Result<(), NameProblem> {
    let ok = !s.is_empty()
        && s.len() <= 100
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(NameProblem {
            why: None,
            rule: CLUSTER_RULE,
        })
    }
}

/// A region code: lower-case words and a number, joined by `-` (`us-east-1`, `us-gov-west-1`).
pub fn aws_region(s: &str) -> Result<(), NameProblem> {
    let parts: Vec<&str> = s.split('-').collect();
    let ok = parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts
            .last()
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(NameProblem {
            why: None,
            rule: REGION_RULE,
        })
    }
}

/// S3's rules for a general purpose bucket name.
pub fn s3_bucket(s: &str) -> Result<(), NameProblem> {
    let fail = |why: &str| {
        Err(NameProblem {
            why: Some(why.to_string()),
            rule: BUCKET_RULE,
        })
    };
    if s.len() < 3 {
        return fail("it is shorter than 3 characters");
    }
    if s.len() > 63 {
        return fail("it is longer than 63 characters");
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-'))
    {
        return if c.is_ascii_uppercase() {
            fail("it has an uppercase letter")
        } else {
            fail(&format!("it has the character `{c}`"))
        };
    }
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !edge(s.chars().next()) || !edge(s.chars().last()) {
        return fail("it must start and end with a letter or digit");
    }
    if s.contains("..") {
        return fail("it has two periods in a row");
    }
    if s.split('.').count() == 4 && s.split('.').all(|p| p.parse::<u8>().is_ok()) {
        return fail("it is written like an IP address");
    }
    for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if s.starts_with(prefix) {
            return fail(&format!("names starting with `{prefix}` are reserved"));
        }
    }
    for suffix in ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"] {
        if s.ends_with(suffix) {
            return fail(&format!("names ending with `{suffix}` are reserved"));
        }
    }
    Ok(())
}

/// A Kubernetes object name (a DNS subdomain, RFC 1123): what Backups and Restores are called.
pub fn k8s_object(s: &str) -> Result<(), NameProblem> {
    let fail = |why: &str| {
        Err(NameProblem {
            why: Some(why.to_string()),
            rule: OBJECT_RULE,
        })
    };
    if s.is_empty() {
        return fail("it is empty");
    }
    if s.len() > 253 {
        return fail("it is longer than 253 characters");
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-'))
    {
        return if c.is_ascii_uppercase() {
            fail("it has an uppercase letter")
        } else {
            fail(&format!("it has the character `{c}`"))
        };
    }
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !edge(s.chars().next()) || !edge(s.chars().last()) {
        return fail("it must start and end with a letter or digit");
    }
    Ok(())
}

/// Whether `s` can name an environment variable a setting is read from (`urlEnv`): letters,
/// digits and `_`, not empty.
pub fn env_var(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names() {
        for good in ["prod", "a", "my_cluster-2", &"x".repeat(100)] {
            assert!(eks_cluster_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", "_x", "has space", "dot.ted", &"x".repeat(101)] {
            assert!(eks_cluster_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn regions() {
        for good in ["us-east-1", "eu-west-1", "us-gov-west-1", "ap-southeast-2"] {
            assert!(aws_region(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "not a region!!",
            "US-EAST-1",
            "us-east",
            "useast1",
            "us--1",
        ] {
            assert!(aws_region(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn buckets() {
        for good in ["upgrade-state", "abc", "a.b-c1", &"a".repeat(63)] {
            assert!(s3_bucket(good).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("ab", "shorter"),
            ("Bad_Bucket", "uppercase"),
            ("bad_bucket", "`_`"),
            ("-abc", "start and end"),
            ("a..b", "two periods"),
            ("192.168.5.4", "IP address"),
            ("xn--abc", "reserved"),
            ("abc-s3alias", "reserved"),
        ] {
            let problem = s3_bucket(bad).expect_err(bad);
            assert!(
                problem.why.as_deref().unwrap_or("").contains(why),
                "{bad}: {problem:?}"
            );
        }
    }

    #[test]
    fn object_names() {
        assert!(k8s_object("eks-upgrade-manual-20260101t020000z").is_ok());
        for bad in ["", "Upper", "under_score", "-lead", "trail."] {
            assert!(k8s_object(bad).is_err(), "{bad}");
        }
    }
}
