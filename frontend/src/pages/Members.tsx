// SPDX-License-Identifier: Apache-2.0
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, items } from "../api/client";
import type { Member } from "../api/types";
import { EmptyState, ErrorMessage, Loadable, Section, useConfirm } from "../components/ui";
import { InviteForm, PendingInvitations, ROLES } from "../invitations/Sent";

export function Members() {
  const client = useQueryClient();
  const [confirm, dialog] = useConfirm();
  const members = useQuery({ queryKey: ["members"],
    queryFn: async () => items(await api<{ results: Member[] }>("/api/members")) });
  const refresh = () => client.invalidateQueries({ queryKey: ["members"] });
  const change = useMutation({
    mutationFn: (call: { id: string; role?: string }) => call.role
      ? api(`/api/members/${call.id}`, { method: "PATCH", body: { role: call.role } })
      : api(`/api/members/${call.id}`, { method: "DELETE" }),
    onSettled: refresh,
  });
  return (
    <>
      <h1>Members</h1>
      {dialog}
      <Section title="Invite"><InviteForm /></Section>
      <Section title="Pending invitations"><PendingInvitations /></Section>
      <Section title="Members">
        <ErrorMessage error={change.error} />
        <Loadable query={members} label="members" isEmpty={(list) => !list.length}
          empty={<EmptyState title="No members">Invite someone above.</EmptyState>}>
          {(list) => (
          <table className="data">
            <thead><tr><th>Email</th><th>Role</th><th></th></tr></thead>
            <tbody>{list.map((m) => (
              <tr key={m.id}><td data-label="Email">{m.email}</td><td data-label="Role">
                <label className="sr-only" htmlFor={`role-${m.id}`}>Role of {m.email}</label>
                <select id={`role-${m.id}`} value={m.role} onChange={async (e) => {
                  const role = e.target.value;
                  if (await confirm({ title: `Make ${m.email} ${role === "admin" || role === "owner" ? "an" : "a"} ${role}?`,
                    action: "Change role", body: <p>Their access changes at once (now {m.role}).</p> })) {
                    change.mutate({ id: m.id, role });
                  }
                }}>
                  {ROLES.map((r) => <option key={r}>{r}</option>)}</select></td>
                <td className="bare"><button type="button" className="danger" aria-label={`Remove ${m.email}`}
                  onClick={async () => {
                    if (await confirm({ title: `Remove ${m.email}?`, action: "Remove",
                      body: <p>They lose access to this organization at once; keys they made keep
                        working until revoked.</p> })) change.mutate({ id: m.id });
                  }}>Remove</button></td></tr>
            ))}</tbody>
          </table>
          )}
        </Loadable>
      </Section>
    </>
  );
}
