// The doctor on real hosts (lab/doctor.ts): Man2 deployed in the lab, each troubleshooting
// item broken on purpose, named by the doctor, mended; destroy restores every host.
import { runDoctorLab } from "../lab/doctor";
import { expectAllPassed, labDescribe } from "./support/lab";

labDescribe("the doctor in the lab", () => {
    it("finds nothing on a healthy deployment and names every item broken on purpose", async () => {
        const lines: string[] = [];
        const r = await runDoctorLab((l) => lines.push(l));
        lines.push(`doctor runs ${r.doctorMs.join(", ")} ms`);
        expectAllPassed(`doctor in the lab: ${r.breakages} items broken; checks`, lines, r.checks);
        expect(r.breakages).toBeGreaterThanOrEqual(12);
        expect(r.checks.length).toBeGreaterThanOrEqual(r.breakages + 8);
    });
});
