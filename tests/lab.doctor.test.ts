// The doctor on real hosts (lab/doctor.ts): Man2 deployed in the lab, each troubleshooting
// item broken on purpose, named by the doctor, mended; destroy restores every host.
import { runDoctorLab } from "../lab/doctor";
import { missingPrerequisites } from "../lab/lab";

const required = process.env.TUNNELPAIR_LAB_REQUIRED === "1";
const maybe = missingPrerequisites().length === 0 || required ? describe : describe.skip;

maybe("the doctor in the lab", () => {
    it("finds nothing on a healthy deployment and names every item broken on purpose", async () => {
        const lines: string[] = [];
        const r = await runDoctorLab((l) => lines.push(l));
        const failed = r.checks.filter((c) => !c.ok);
        console.log(`${lines.join("\n")}\ndoctor in the lab: ${r.breakages} items broken; ${r.checks.length - failed.length} checks passed, ${failed.length} failed; doctor runs ${r.doctorMs.join(", ")} ms`);
        expect(failed).toEqual([]);
        expect(r.breakages).toBeGreaterThanOrEqual(12);
        expect(r.checks.length).toBeGreaterThanOrEqual(r.breakages + 8);
    });
});
