//! Reading the EC2 Query API's XML answers: `<xSet><item>...</item></xSet>` lists, `tagSet`
//! tags, `nextToken`, and `<Response><Errors><Error><Code>/<Message>` errors (EC2 API reference,
//! "Query API response structure" and "Error codes").

use roxmltree::{Document, Node};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    pub id: String,
    pub vpc_id: String,
    pub availability_zone: String,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
    pub vpc_id: String,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub id: String,
    /// `creating`, `available`, `in-use`, `deleting`, `deleted`, `error`.
    pub state: String,
    pub availability_zone: String,
    pub size_gib: u64,
    pub tags: BTreeMap<String, String>,
}

fn child<'a>(node: Node<'a, 'a>, name: &str) -> Option<Node<'a, 'a>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn text(node: Node, name: &str) -> String {
    child(node, name)
        .and_then(|c| c.text())
        .unwrap_or_default()
        .to_string()
}

fn tags(item: Node) -> BTreeMap<String, String> {
    child(item, "tagSet")
        .map(|set| {
            set.children()
                .filter(|c| c.is_element())
                .map(|t| (text(t, "key"), text(t, "value")))
                .collect()
        })
        .unwrap_or_default()
}

/// The items of the list `set` under the root, and the next page's token.
fn items<T>(
    xml: &str,
    set: &str,
    read: impl Fn(Node) -> T,
) -> Result<(Vec<T>, Option<String>), String> {
    let doc = Document::parse(xml).map_err(|e| format!("unreadable answer: {e}"))?;
    let root = doc.root_element();
    let list = child(root, set)
        .map(|s| s.children().filter(|c| c.is_element()).map(&read).collect())
        .unwrap_or_default();
    let next = child(root, "nextToken")
        .and_then(|n| n.text())
        .map(str::to_string);
    Ok((list, next))
}

pub fn subnets(xml: &str) -> Result<(Vec<Subnet>, Option<String>), String> {
    items(xml, "subnetSet", |i| Subnet {
        id: text(i, "subnetId"),
        vpc_id: text(i, "vpcId"),
        availability_zone: text(i, "availabilityZone"),
        tags: tags(i),
    })
}

pub fn security_groups(xml: &str) -> Result<(Vec<SecurityGroup>, Option<String>), String> {
    items(xml, "securityGroupInfo", |i| SecurityGroup {
        id: text(i, "groupId"),
        name: text(i, "groupName"),
        vpc_id: text(i, "vpcId"),
        tags: tags(i),
    })
}

pub fn volumes(xml: &str) -> Result<(Vec<Volume>, Option<String>), String> {
    items(xml, "volumeSet", |i| Volume {
        id: text(i, "volumeId"),
        state: text(i, "status"),
        availability_zone: text(i, "availabilityZone"),
        size_gib: text(i, "size").parse().unwrap_or(0),
        tags: tags(i),
    })
}

/// The first field named `name` in an answer (`volumeId` of CreateVolume, `vpc/vpcId` of
/// CreateVpc, ...).
pub fn field(xml: &str, name: &str) -> Option<String> {
    let doc = Document::parse(xml).ok()?;
    let found = doc
        .descendants()
        .find(|n| n.is_element() && n.tag_name().name() == name);
    found.and_then(|n| n.text()).map(str::to_string)
}

/// (code, message) of an error answer.
pub fn error(xml: &str) -> Option<(String, String)> {
    let doc = Document::parse(xml).ok()?;
    let error = doc
        .descendants()
        .find(|n| n.is_element() && n.tag_name().name() == "Error")?;
    Some((text(error, "Code"), text(error, "Message")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_volume_page_with_its_tags_and_next_token() {
        // Shape from the EC2 API reference, DescribeVolumes "Example 1".
        let xml = r#"<DescribeVolumesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
           <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
           <volumeSet>
              <item>
                 <volumeId>vol-1234567890abcdef0</volumeId>
                 <size>80</size>
                 <availabilityZone>us-east-1a</availabilityZone>
                 <status>in-use</status>
                 <attachmentSet><item><instanceId>i-1</instanceId></item></attachmentSet>
                 <tagSet><item><key>KubernetesCluster</key><value>lab</value></item></tagSet>
              </item>
           </volumeSet>
           <nextToken>abc</nextToken>
        </DescribeVolumesResponse>"#;
        let (list, next) = volumes(xml).unwrap_or_default();
        assert_eq!(next.as_deref(), Some("abc"));
        assert_eq!(
            list,
            vec![Volume {
                id: "vol-1234567890abcdef0".into(),
                state: "in-use".into(),
                availability_zone: "us-east-1a".into(),
                size_gib: 80,
                tags: BTreeMap::from([("KubernetesCluster".into(), "lab".into())]),
            }]
        );
    }

    #[test]
    fn reads_an_error_answer() {
        let xml = "<Response><Errors><Error><Code>DependencyViolation</Code><Message>resource sg-1 has a dependent object</Message></Error></Errors><RequestID>x</RequestID></Response>";
        assert_eq!(
            error(xml),
            Some((
                "DependencyViolation".into(),
                "resource sg-1 has a dependent object".into()
            ))
        );
    }
}
