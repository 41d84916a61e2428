//! The wildcard match that Velero's include/exclude lists, EC2's filters and IAM's actions and
//! resources all use: `*` matches any run of characters (none included), `?` exactly one.

/// Whether `text` matches `pattern`. Linear backtracking to the last `*`, so a pattern with
/// many stars costs no more than one pass per star.
pub fn matches(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn stars_and_question_marks() {
        assert!(matches("kube-*", "kube-system"));
        assert!(matches("*", ""));
        assert!(!matches("kube-?", "kube-system"));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(matches("eks:Describe*", "eks:DescribeCluster"));
        assert!(!matches("subnet-0?", "subnet-0ab"));
        assert!(matches("", ""));
        assert!(!matches("", "x"));
        // EC2's `Filter` values (the sandbox's DescribeSubnets).
        assert!(matches("us-east-1*", "us-east-1a"));
        assert!(matches("subnet-0?", "subnet-0a"));
        assert!(!matches("us-west-2*", "us-east-1a"));
        assert!(matches("exact", "exact"));
    }
}
