//! EC2 query parameters: the form body (or query string), with EC2's numbered list members
//! (`SubnetId.1`, `Filter.1.Name`, `Filter.1.Value.1`) gathered in their numeric order.

use base64::Engine;

/// The parameters of one request, as sent.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parameters from the query string and the form body together.
    pub fn parse(query: Option<&str>, body: &[u8]) -> Params {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for source in [query.unwrap_or("").as_bytes(), body] {
            pairs.extend(
                form_urlencoded::parse(source).map(|(k, v)| (k.into_owned(), v.into_owned())),
            );
        }
        Params(pairs)
    }

    pub fn one(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The members of a list parameter `PREFIX.N`, ordered by N.
    pub fn list(&self, prefix: &str) -> Vec<&str> {
        let mut numbered: Vec<(u32, &str)> = self
            .0
            .iter()
            .filter_map(|(k, v)| {
                let n = k.strip_prefix(prefix)?.strip_prefix('.')?.parse().ok()?;
                Some((n, v.as_str()))
            })
            .collect();
        numbered.sort_by_key(|(n, _)| *n);
        numbered.into_iter().map(|(_, v)| v).collect()
    }

    /// `Filter.N.Name` with its `Filter.N.Value.M`, ordered by N.
    pub fn filters(&self) -> Vec<(String, Vec<String>)> {
        let mut numbers: Vec<u32> = self
            .0
            .iter()
            .filter_map(|(k, _)| {
                let rest = k.strip_prefix("Filter.")?;
                rest.split('.').next()?.parse().ok()
            })
            .collect();
        numbers.sort_unstable();
        numbers.dedup();
        numbers
            .into_iter()
            .map(|n| {
                let name = self
                    .one(&format!("Filter.{n}.Name"))
                    .unwrap_or("")
                    .to_string();
                let values = self
                    .list(&format!("Filter.{n}.Value"))
                    .into_iter()
                    .map(str::to_string)
                    .collect();
                (name, values)
            })
            .collect()
    }
}

const TOKEN_PREFIX: &str = "sandbox-ec2-page:";

/// An opaque `NextToken` for a page starting at `offset`.
pub fn encode_token(offset: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{TOKEN_PREFIX}{offset}"))
}

pub fn decode_token(token: &str) -> Option<usize> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix(TOKEN_PREFIX)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_members_are_gathered_in_order() {
        let p = Params::parse(
            None,
            b"Action=DescribeSubnets&SubnetId.2=subnet-b&SubnetId.1=subnet-a&Filter.1.Name=vpc-id&Filter.1.Value.1=vpc-1&Filter.1.Value.2=vpc-2",
        );
        assert_eq!(p.one("Action"), Some("DescribeSubnets"));
        assert_eq!(p.list("SubnetId"), ["subnet-a", "subnet-b"]);
        assert_eq!(
            p.filters(),
            [(
                "vpc-id".to_string(),
                vec!["vpc-1".to_string(), "vpc-2".to_string()]
            )]
        );
        assert_eq!(decode_token(&encode_token(7)), Some(7));
        assert_eq!(decode_token("garbage"), None);
    }
}
