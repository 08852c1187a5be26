#[tinyo::isolated(user = 70000)]
fn big() {}

#[tinyo::isolated(user = "no body")]
fn spaced() {}

#[tinyo::isolated(user = 1.5)]
fn float() {}

fn main() {}
