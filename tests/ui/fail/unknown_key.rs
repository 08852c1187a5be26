#[tinyo::isolated(hostnme = "db-1")]
fn t() {}

fn main() {}
