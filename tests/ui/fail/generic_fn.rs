#[tinyo::isolated]
fn t<T: Default>() {
    let _ = T::default();
}

fn main() {}
