import Link from "next/link";

export default function NotFound() {
  return (
    <main className="signin">
      <div className="card stack">
        <h1>404</h1>
        <Link href="/">crm2</Link>
      </div>
    </main>
  );
}
