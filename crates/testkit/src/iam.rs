//! IAM and STS setup through moto's AWS query API (raw HTTP: no IAM SDK to build).

use crate::http::{self, form_encode};
use crate::moto::REQUEST_TIMEOUT;
use crate::{MotoServer, TestkitError};

/// moto's default account id.
pub const MOTO_ACCOUNT_ID: &str = "123456789012";

/// An IAM user created by [`MotoServer::create_user_with_policy`], with its access key.
#[derive(Clone, Debug)]
pub struct IamUser {
    /// The user name.
    pub name: String,
    /// `arn:aws:iam::123456789012:user/<name>`.
    pub arn: String,
    /// The access key id of its key.
    pub access_key_id: String,
    /// The secret of its key.
    pub secret_access_key: String,
}

/// The text between `<tag>` and `</tag>` in an XML answer.
fn xml_value(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(xml[start..end].to_string())
}

impl MotoServer {
    /// Calls an action of a query-API service (`iam`, `sts`) unsigned and returns the XML
    /// answer. Works while IAM is not enforced (moto routes on the `Authorization` scope).
    pub fn query_api(
        &self,
        service: &str,
        version: &str,
        action: &str,
        params: &[(&str, &str)],
    ) -> Result<String, TestkitError> {
        let mut body = format!(
            "Action={}&Version={}",
            form_encode(action),
            form_encode(version)
        );
        for (name, value) in params {
            body.push('&');
            body.push_str(&form_encode(name));
            body.push('=');
            body.push_str(&form_encode(value));
        }
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/{service}/aws4_request, \
             SignedHeaders=host, Signature=0"
        );
        let response = http::request(
            self.port(),
            "POST",
            "/",
            &[
                (
                    "Content-Type",
                    "application/x-www-form-urlencoded; charset=utf-8",
                ),
                ("Authorization", &authorization),
                ("X-Amz-Date", "20250101T000000Z"),
            ],
            body.as_bytes(),
            REQUEST_TIMEOUT,
        )
        .map_err(|source| TestkitError::Http {
            endpoint: self.endpoint(),
            source,
        })?;
        if response.status != 200 {
            return Err(TestkitError::Api {
                action: action.to_string(),
                status: response.status,
                body: response.text(),
            });
        }
        Ok(response.text())
    }

    fn iam(&self, action: &str, params: &[(&str, &str)]) -> Result<String, TestkitError> {
        self.query_api("iam", "2010-05-08", action, params)
    }

    fn missing(action: &str, field: &str, xml: &str) -> TestkitError {
        TestkitError::Api {
            action: action.to_string(),
            status: 200,
            body: format!("no <{field}> in answer: {xml}"),
        }
    }

    /// Creates an IAM user with one inline policy (a JSON policy document) and an access key.
    /// Call it while IAM is not enforced.
    pub fn create_user_with_policy(
        &self,
        user_name: &str,
        policy_document: &str,
    ) -> Result<IamUser, TestkitError> {
        let xml = self.iam("CreateUser", &[("UserName", user_name)])?;
        let arn = xml_value(&xml, "Arn").ok_or_else(|| Self::missing("CreateUser", "Arn", &xml))?;
        self.iam(
            "PutUserPolicy",
            &[
                ("UserName", user_name),
                ("PolicyName", "logferry-test"),
                ("PolicyDocument", policy_document),
            ],
        )?;
        let xml = self.iam("CreateAccessKey", &[("UserName", user_name)])?;
        let access_key_id = xml_value(&xml, "AccessKeyId")
            .ok_or_else(|| Self::missing("CreateAccessKey", "AccessKeyId", &xml))?;
        let secret_access_key = xml_value(&xml, "SecretAccessKey")
            .ok_or_else(|| Self::missing("CreateAccessKey", "SecretAccessKey", &xml))?;
        Ok(IamUser {
            name: user_name.to_string(),
            arn,
            access_key_id,
            secret_access_key,
        })
    }

    /// Creates an IAM role with a trust (assume-role) policy and one inline permissions policy;
    /// returns its ARN. Call it while IAM is not enforced.
    pub fn create_role(
        &self,
        role_name: &str,
        trust_policy_document: &str,
        policy_document: &str,
    ) -> Result<String, TestkitError> {
        let xml = self.iam(
            "CreateRole",
            &[
                ("RoleName", role_name),
                ("AssumeRolePolicyDocument", trust_policy_document),
            ],
        )?;
        let arn = xml_value(&xml, "Arn").ok_or_else(|| Self::missing("CreateRole", "Arn", &xml))?;
        self.iam(
            "PutRolePolicy",
            &[
                ("RoleName", role_name),
                ("PolicyName", "logferry-test"),
                ("PolicyDocument", policy_document),
            ],
        )?;
        Ok(arn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_xml_values() {
        let xml = "<R><User><Arn>arn:aws:iam::1:user/a</Arn></User></R>";
        assert_eq!(
            xml_value(xml, "Arn").as_deref(),
            Some("arn:aws:iam::1:user/a")
        );
        assert_eq!(xml_value(xml, "Nope"), None);
    }
}
