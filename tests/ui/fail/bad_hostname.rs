#[tinyo::isolated(hostname = "")]
fn empty() {}

#[tinyo::isolated(hostname = "a-name-that-is-far-too-long-for-a-hostname-label-of-rfc-1123-xyz")]
fn too_long() {}

#[tinyo::isolated(hostname = "db_1!")]
fn bad_chars() {}

fn main() {}
