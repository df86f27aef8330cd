"use client";

import { Shell } from "@/components/Shell";
import { Pending } from "@/components/Pending";
import { useMe } from "@/lib/queries";
import { useT } from "@/lib/useT";

function Profile() {
  const t = useT();
  const me = useMe();
  if (!me.data) return <Pending query={me} />;
  return (
    <section className="stack">
      <h1>{t("profile")}</h1>
      <dl className="props">
        <dt>{t("signin.email")}</dt>
        <dd>{me.data.email}</dd>
        <dt>{t("profile.roles")}</dt>
        <dd>{me.data.roles.join(", ")}</dd>
        <dt>{t("profile.permissions")}</dt>
        <dd>{me.data.permissions.join(", ")}</dd>
      </dl>
    </section>
  );
}

export default function ProfilePage() {
  return (
    <Shell>
      <Profile />
    </Shell>
  );
}
