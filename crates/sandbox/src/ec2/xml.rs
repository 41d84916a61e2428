//! The XML EC2 answers with: `DescribeSubnetsResponse` with its `subnetSet`, and the error
//! envelope `<Response><Errors><Error>…</Error></Errors><RequestID>…</RequestID></Response>`.

use crate::scenario::Subnet;

/// Where the request id goes; the caller fills it in once the id is known.
pub const REQUEST_ID_SLOT: &str = "\u{0}request-id\u{0}";

const NAMESPACE: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

pub use crate::xml::escape;

pub fn error(code: &str, message: &str, request_id: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{}</RequestID></Response>",
        escape(code),
        escape(message),
        escape(request_id)
    )
}

pub fn describe_subnets(
    subnets: &[&Subnet],
    region: &str,
    owner: &str,
    next_token: Option<&str>,
) -> String {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeSubnetsResponse xmlns=\"{NAMESPACE}\">\n    <requestId>{REQUEST_ID_SLOT}</requestId>\n    <subnetSet>\n"
    );
    for s in subnets {
        let fields = [
            ("subnetId", s.id.clone()),
            (
                "subnetArn",
                format!("arn:aws:ec2:{region}:{owner}:subnet/{}", s.id),
            ),
            ("state", "available".to_string()),
            ("ownerId", owner.to_string()),
            ("vpcId", s.vpc_id.clone()),
            ("cidrBlock", s.cidr_block.clone()),
            ("availableIpAddressCount", s.free_ips.to_string()),
            ("availabilityZone", s.availability_zone.clone()),
            ("availabilityZoneId", s.availability_zone_id.clone()),
            ("defaultForAz", "false".to_string()),
            ("mapPublicIpOnLaunch", "false".to_string()),
            ("assignIpv6AddressOnCreation", "false".to_string()),
        ];
        out.push_str("        <item>\n");
        for (name, value) in fields {
            out.push_str(&format!(
                "            <{name}>{}</{name}>\n",
                escape(&value)
            ));
        }
        out.push_str("            <ipv6CidrBlockAssociationSet/>\n            <tagSet/>\n");
        out.push_str("        </item>\n");
    }
    out.push_str("    </subnetSet>\n");
    if let Some(token) = next_token {
        out.push_str(&format!("    <nextToken>{}</nextToken>\n", escape(token)));
    }
    out.push_str("</DescribeSubnetsResponse>\n");
    out
}
